"""The ``interlink`` command line: one module per command group, each a thin shell over
:class:`interlink.service.Hub` (or the topology loader).

Exit codes: 0 success, 1 when what the command checks does not hold, 2 on bad usage or bad
input. Errors are printed as messages, never as tracebacks.
"""

from __future__ import annotations

import os
import sys

import typer

from interlink.cli import deliveries, documents, flows, prune, push, server, setup, status
from interlink.cli import demo as demo_command
from interlink.cli.common import EXIT_BAD_INPUT, err, use_features
from interlink.errors import ConfigError, InterlinkError
from interlink.features.registry import FEATURES, register_cli

DEBUG_ENV = "INTERLINK_DEBUG"

app = typer.Typer(
    name="interlink",
    help="Interlink: reliable, observable links between business systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

app.command("init")(setup.init)
app.command("check")(setup.check)
app.command("serve")(server.serve)
app.command("worker")(server.worker)
app.command("push")(push.push)
app.command("status")(status.status)
app.command("deliveries")(deliveries.deliveries)
app.command("show")(documents.show)
app.command("repush")(deliveries.repush)
app.add_typer(flows.app, name="flows")
app.command("demo")(demo_command.demo)
prune.register(app)


# The features' command groups, and the features every command's hub installs.
register_cli(app)
use_features(FEATURES)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False)
        sys.exit(EXIT_BAD_INPUT)
    except InterlinkError as exc:
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        err.print(
            f"error: unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for details)",
            markup=False,
        )
        sys.exit(EXIT_BAD_INPUT)
