"""``drill run`` rehearses flows against sandboxes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from interlink.cli.common import (
    EXIT_DOES_NOT_HOLD,
    ConfigOption,
    JsonOption,
    err,
    installed_features,
    out,
    print_json,
    topology,
)
from interlink.errors import InputError, InterlinkError

REPORT_FORMATS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}

drill_app = typer.Typer(help="Rehearse flows against sandbox downstreams with scripted faults.")


@drill_app.command("run")
def run(
    drill_file: Annotated[Path, typer.Argument(help="The drill file (YAML).", show_default=False)],
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Also write the report to F.html or F.md."),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Run a drill on a fresh temporary store against sandboxes; exit 1 if an expectation
    does not hold."""
    from interlink.features.drills import report as render
    from interlink.features.drills import spec
    from interlink.features.drills.run import record, rehearse
    from interlink.store.db import open_store

    kind = None
    if report is not None:
        kind = REPORT_FORMATS.get(report.suffix.lower())
        if kind is None:
            raise InputError(f"--report {report}: use a file ending in .html or .md")
    topo = topology(config)
    drill = spec.load(drill_file)
    progress = None if as_json or not sys.stderr.isatty() else _progress
    result = asyncio.run(rehearse(drill, topo, progress, installed_features()))
    try:
        store = open_store(topo.database_url())
        try:
            result["run"] = record(store, result)
        finally:
            store.close()
    except InterlinkError as e:
        err.print(f"warning: the run was not recorded: {e.message}", markup=False)
    if report is not None:
        text = render.html(result) if kind == "html" else render.markdown(result)
        try:
            report.write_text(text, encoding="utf-8")
        except OSError as e:
            raise InputError(f"--report {report}: {e.strerror or e}") from None
    if as_json:
        print_json(result)
    else:
        render.terminal(result, out)
        if report is not None:
            out.print(f"report written to {report}", markup=False)
    if not result["passed"]:
        raise typer.Exit(EXIT_DOES_NOT_HOLD)


def _progress(line: str) -> None:
    err.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
