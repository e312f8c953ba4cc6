"""What every command shares: the ``-c/--config`` option, opening the topology and the hub,
reading times and filters from the command line, and printing.

Commands raise :class:`~interlink.errors.InterlinkError` for anything the user can fix;
:func:`interlink.cli.main` turns it into a message on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console

from interlink import times
from interlink.config import CONFIG_ENV, Topology, config_path, load
from interlink.errors import ConfigError
from interlink.service import DeliveryFilter, FeatureLike, Hub

EXIT_OK = 0
EXIT_DOES_NOT_HOLD = 1
EXIT_BAD_INPUT = 2

ACTOR_ENV = "INTERLINK_ACTOR"


def _console(stream: TextIO) -> Console:
    # Piped output is read by scripts and logs: long lines stay whole instead of wrapping at 80.
    tty = stream.isatty()
    wide = None if tty or os.environ.get("COLUMNS") else 160
    # markup=False: every string printed, and every string in a table cell or title, is data
    # (business keys, subjects, downstream messages) and must show as it is: with markup on,
    # a key "T-[bold]77[/bold]" printed as "T-77". Styles are given as rich.text.Text.
    return Console(file=stream, highlight=False, soft_wrap=not tty, width=wide, markup=False)


out = _console(sys.stdout)
err = _console(sys.stderr)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        help="The topology file [default: $INTERLINK_CONFIG or ./interlink.yaml].",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# Filter options shared by `deliveries` and `repush`.
FlowOption = Annotated[str | None, typer.Option("--flow", help="Only this flow.")]
StatusOption = Annotated[
    str | None,
    typer.Option("--status", help="pending, in_flight, held, delivered or dead."),
]
ReasonOption = Annotated[
    str | None,
    typer.Option("--reason", help="Why held or dead, e.g. downstream_down, rejected."),
]
KeyOption = Annotated[str | None, typer.Option("--key", help="Only this business key.")]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Updated at or after this ISO 8601 time (topology timezone)."),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="Updated before this ISO 8601 time (topology timezone)."),
]


def topology(config: Path | None) -> Topology:
    path = config_path(str(config) if config is not None else None)
    if not path.exists():
        raise ConfigError([f"{path}: no such file", missing_topology_hint(config)])
    return load(path)


def missing_topology_hint(config: Path | None) -> str:
    """What to do when there is no topology file, by how its name was chosen."""
    if config is not None:
        return "  check the path given with -c/--config, or create one with `interlink init DIR`"
    if os.environ.get(CONFIG_ENV):
        return (
            f"  ${CONFIG_ENV} names a file that does not exist: fix it, give -c FILE, "
            "or create one with `interlink init`"
        )
    return f"  create one here with `interlink init`, or name yours with -c FILE (or ${CONFIG_ENV})"


# The features a command's hub installs: interlink.features.registry.FEATURES, handed over by
# interlink.cli when it starts (the feature commands import this module, so it cannot import
# the registry itself without a cycle).
_features: tuple[FeatureLike, ...] = ()


def use_features(features: Sequence[FeatureLike]) -> None:
    global _features
    _features = tuple(features)


def installed_features() -> tuple[FeatureLike, ...]:
    return _features


@contextlib.contextmanager
def hub(config: Path | None) -> Iterator[Hub]:
    """A hub for one command; nothing here starts the engine or its transport."""
    h = Hub(topology(config), features=_features)
    try:
        yield h
    finally:
        h.store.close()


def parse_time(text: str | None, option: str, topo: Topology) -> datetime | None:
    """An ISO 8601 time; without an offset it is in the topology's timezone."""
    return times.parse_time(text, topo.tz, option) if text is not None else None


def delivery_filter(
    topo: Topology,
    *,
    flow: str | None,
    status: str | None,
    reason: str | None,
    key: str | None,
    since: str | None,
    until: str | None,
) -> DeliveryFilter:
    return DeliveryFilter.parse(
        topo.tz,
        flow=flow,
        status=status,
        reason=reason,
        key=key,
        since=since,
        until=until,
        option_prefix="--",
    )


def actor() -> str:
    """Who is acting, for the audit record: $INTERLINK_ACTOR or the OS user, as ``cli:NAME``."""
    name = os.environ.get(ACTOR_ENV)
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = "unknown"
    return f"cli:{name}"


def local_time(when: datetime | None, topo: Topology) -> str:
    if when is None:
        return ""
    return when.astimezone(topo.tz).strftime("%Y-%m-%d %H:%M:%S")


def print_json(data: Any) -> None:
    # Plain stdout, not Rich: scripts get exactly the JSON, unwrapped.
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def shorten(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"
