"""``drill run`` rehearses flows against sandboxes; ``readiness`` is the go-live checklist."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from interlink.cli.common import (
    EXIT_DOES_NOT_HOLD,
    ConfigOption,
    JsonOption,
    err,
    hub,
    out,
    print_json,
    topology,
)
from interlink.config import parse_duration
from interlink.errors import InputError, InterlinkError
from interlink.readiness import DEFAULT_DRILL_WITHIN

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
    from interlink.drills import report as render
    from interlink.drills import spec
    from interlink.drills.run import record, rehearse
    from interlink.store.db import open_store

    kind = None
    if report is not None:
        kind = REPORT_FORMATS.get(report.suffix.lower())
        if kind is None:
            raise InputError(f"--report {report}: use a file ending in .html or .md")
    topo = topology(config)
    drill = spec.load(drill_file)
    progress = None if as_json or not sys.stderr.isatty() else _progress
    result = asyncio.run(rehearse(drill, topo, progress))
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


def readiness(
    flow: Annotated[str | None, typer.Argument(help="Only this flow.", show_default=False)] = None,
    drill_within: Annotated[
        str,
        typer.Option("--drill-within", help="How recent a passed outage drill must be."),
    ] = "30d",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The go-live checklist per flow; exit 1 unless every item passed."""
    from interlink.readiness import check

    try:
        within = parse_duration(drill_within) if drill_within else DEFAULT_DRILL_WITHIN
    except ValueError as e:
        raise InputError(f"--drill-within: {e}") from None
    if within <= timedelta(0):
        raise InputError("--drill-within must be more than zero")
    with hub(config) as h:
        result = asyncio.run(check(h, flow, within))
    if as_json:
        print_json(result)
    else:
        _print_readiness(result)
    if not result["passed"]:
        raise typer.Exit(EXIT_DOES_NOT_HOLD)


_STYLE = {"passed": "green", "failed": "red", "not available": "yellow"}
_MARK = {"passed": "PASS", "failed": "FAIL", "not available": "N/A"}


def _print_readiness(result: dict[str, Any]) -> None:
    for flow in result["flows"]:
        verdict = (
            Text("ready", style="bold green")
            if flow["passed"]
            else Text("not ready", style="bold red")
        )
        table = Table(
            title=Text.assemble(f"{flow['flow']} ({flow['from']} → {flow['to']}): ", verdict),
            title_justify="left",
        )
        table.add_column("")
        table.add_column("item")
        table.add_column("found")
        table.add_column("next")
        for item in flow["items"]:
            table.add_row(
                Text(_MARK[item["status"]], style=_STYLE[item["status"]]),
                item["item"],
                item["detail"],
                item["next"],
            )
        out.print(table)
    if not result["flows"]:
        out.print("no flows in the topology")


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
    app.command("readiness")(readiness)
