"""``alerts``: what was sent to whom, and a test message to every channel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from interlink.cli.common import (
    EXIT_DOES_NOT_HOLD,
    ConfigOption,
    JsonOption,
    hub,
    local_time,
    out,
    print_json,
    shorten,
)
from interlink.errors import InputError
from interlink.features.alerts.service import alerts, send_test

app = typer.Typer(help="Alert messages and channels.", no_args_is_help=True, rich_markup_mode=None)

STATUSES = ("pending", "sent", "failed", "unrouted")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="alerts")


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, sent, failed or unrouted.")
    ] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="Only this flow.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="Only this system.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 50,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Alert messages, newest first: what was sent, to whom, over which channel."""
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    with hub(config) as h:
        found = alerts(h).history(status=status, flow=flow, system=system, limit=limit)
        if json_:
            print_json(found)
            return
        table = Table()
        for column in ("id", "at", "status", "channel", "to", "subject", "tries", "error"):
            table.add_column(column)
        for a in found:
            when = local_time(_parse(a["at"]), h.topology)
            table.add_row(
                str(a["id"]),
                when,
                a["status"],
                a["channel"],
                shorten(", ".join(a["recipients"]), 40),
                shorten(a["subject"], 60),
                str(a["attempts"]),
                shorten(a["error"], 40),
            )
        out.print(table)
        if not found:
            out.print("no alerts", markup=False)


@app.command("test")
def test(config: ConfigOption = None, json_: JsonOption = False) -> None:
    """Send a test message to every channel of every contact; exit 1 if one fails."""
    with hub(config) as h:
        results = send_test(h)
    if json_:
        print_json(results)
    else:
        for channel, result in results.items():
            out.print(f"{channel}: {result}", markup=False)
        if not results:
            out.print("no channels: no contact has an email or a notify URL", markup=False)
    if any(r != "ok" for r in results.values()):
        raise typer.Exit(EXIT_DOES_NOT_HOLD)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
