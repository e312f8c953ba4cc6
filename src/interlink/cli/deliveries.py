"""``deliveries`` lists deliveries by filter; ``repush`` sends dead or delivered ones again."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from interlink.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_DOES_NOT_HOLD,
    ConfigOption,
    FlowOption,
    JsonOption,
    KeyOption,
    ReasonOption,
    SinceOption,
    StatusOption,
    UntilOption,
    actor,
    delivery_filter,
    err,
    hub,
    local_time,
    out,
    print_json,
    shorten,
)
from interlink.config import Topology
from interlink.errors import InputError
from interlink.model import Delivery
from interlink.service import REPUSHABLE


def deliveries(
    flow: FlowOption = None,
    status: StatusOption = None,
    reason: ReasonOption = None,
    key: KeyOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 50,
    before: Annotated[
        int | None, typer.Option("--before", help="Only ids below this (the next page).")
    ] = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """List deliveries, newest first."""
    with hub(config) as h:
        f = delivery_filter(
            h.topology, flow=flow, status=status, reason=reason, key=key, since=since, until=until
        )
        found = h.deliveries(f, before=before, limit=limit)
        if json_:
            print_json([d.to_json() for d in found])
            return
        out.print(delivery_table(found, h.topology))
        if len(found) == limit:
            out.print(f"more: --before {found[-1].id}", markup=False)


def delivery_table(found: list[Delivery], topology: Topology) -> Table:
    table = Table()
    table.add_column("id", justify="right")
    table.add_column("flow")
    table.add_column("key")
    table.add_column("rev", justify="right")
    table.add_column("state")
    table.add_column("attempts", justify="right")
    table.add_column("updated")
    table.add_column("last error")
    for d in found:
        table.add_row(
            str(d.id),
            d.flow,
            d.key,
            str(d.revision),
            d.state,
            str(d.attempts),
            local_time(d.updated_at, topology),
            shorten(d.last_error, 50),
            style="red" if d.status == "dead" else None,
        )
    return table


def repush(
    delivery_id: Annotated[
        int | None,
        typer.Argument(help="One delivery to re-push; without it, all matching the filter."),
    ] = None,
    flow: FlowOption = None,
    status: Annotated[
        str | None, typer.Option("--status", help="dead (the default) or delivered.")
    ] = None,
    reason: ReasonOption = None,
    key: KeyOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be re-pushed.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Send dead (or delivered) deliveries again: one by id, or every one matching a filter."""
    who = actor()
    with hub(config) as h:
        if delivery_id is not None:
            if any(v is not None for v in (flow, status, reason, key, since, until)):
                raise InputError("give a delivery id or filter options, not both")
            if dry_run:
                d = h.delivery(delivery_id)
                if d.status not in REPUSHABLE:
                    raise InputError(f"delivery {delivery_id} is {d.state}; it cannot be re-pushed")
                result = {"count": 1, "dry_run": True, "sample": [d.id]}
                if json_:
                    print_json(result)
                else:
                    out.print(f"would re-push delivery {d.id} ({d.flow}, {d.key}, {d.state})")
                return
            d = h.repush_one(delivery_id, who)
            if json_:
                print_json(d.to_json())
            else:
                out.print(f"re-pushed delivery {d.id} ({d.flow}, {d.key}): now {d.state}")
            return

        f = delivery_filter(
            h.topology, flow=flow, status=status, reason=reason, key=key, since=since, until=until
        )
        preview = h.repush(f, who, dry_run=True)
        count = preview["count"]
        if dry_run:
            if json_:
                print_json(preview)
            else:
                out.print(f"{count} deliveries would be re-pushed", markup=False)
                if preview["sample"]:
                    out.print(f"first ids: {', '.join(map(str, preview['sample']))}")
            return
        if not yes:
            if not sys.stdin.isatty():
                err.print(
                    f"error: this would re-push {count} deliveries; confirm with --yes "
                    "(no terminal to ask at), or look first with --dry-run",
                    markup=False,
                )
                raise typer.Exit(EXIT_BAD_INPUT)
            if count == 0:
                out.print("nothing to re-push")
                return
            if not typer.confirm(f"Re-push {count} deliveries?", default=False):
                err.print("not re-pushed")
                raise typer.Exit(EXIT_DOES_NOT_HOLD)
        result = h.repush(f, who, dry_run=False)
        if json_:
            print_json(result)
        else:
            out.print(f"re-pushed {result['count']} deliveries", markup=False)
