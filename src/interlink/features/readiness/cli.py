"""``readiness``: the go-live checklist from the command line."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from interlink.cli.common import EXIT_DOES_NOT_HOLD, ConfigOption, JsonOption, hub, out, print_json
from interlink.config import parse_duration
from interlink.errors import InputError
from interlink.features.readiness.checklist import DEFAULT_DRILL_WITHIN
from interlink.features.readiness.service import readiness as readiness_of


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
    try:
        within = parse_duration(drill_within) if drill_within else DEFAULT_DRILL_WITHIN
    except ValueError as e:
        raise InputError(f"--drill-within: {e}") from None
    if within <= timedelta(0):
        raise InputError("--drill-within must be more than zero")
    with hub(config) as h:
        result = asyncio.run(readiness_of(h).check(flow, within))
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
    app.command("readiness")(readiness)
