"""``rollout show|set|promote``: a flow's stage, changed at run time with an audit entry, and
the promotion gate from the command line."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table

from interlink.cli.common import (
    EXIT_DOES_NOT_HOLD,
    ConfigOption,
    JsonOption,
    actor,
    err,
    hub,
    out,
    print_json,
)
from interlink.errors import Conflict
from interlink.features.rollout.service import rollout

app = typer.Typer(
    help="Pilot a flow, then take it to everyone: show, set and promote rollout stages.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

FlowArgument = Annotated[str, typer.Argument(help="The flow's name.", show_default=False)]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="rollout")


@app.command("show")
def show(
    flow: Annotated[str | None, typer.Argument(help="Only this flow.", show_default=False)] = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """The stage of every rolled-out flow; with FLOW, also its pilot's record and the gate."""
    with hub(config) as h:
        service = rollout(h)
        stages = service.show(flow)
        record = asyncio.run(service.record(flow)) if flow is not None else None
    if json_:
        print_json({"items": stages} if record is None else {"stage": stages[0], "record": record})
        return
    table = Table("flow", "stage", "since", "by", "pilot", "outside")
    for s in stages:
        table.add_row(
            s["flow"], s["stage"], s["since"] or "", s["by"] or "", _pilot(s), s["outside"]
        )
    out.print(table)
    if record is not None:
        _print_record(record)


@app.command("set")
def set_stage(
    flow: FlowArgument,
    stage: Annotated[
        str, typer.Argument(help="pilot or off (full goes through promote).", show_default=False)
    ],
    note: Annotated[str, typer.Option("--note", help="Why, for the audit record.")] = "",
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Move a flow to its pilot or turn it off; documents outside wait, skip or fall back."""
    with hub(config) as h:
        result = rollout(h).set(flow, stage, actor(), note)
    if json_:
        print_json(result)
        return
    out.print(
        f"{flow}: {result['from']} → {result['stage']}; "
        f"{result['released']} held deliveries released",
        markup=False,
    )


@app.command("promote")
def promote(
    flow: FlowArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Promote although the gate refuses (needs --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the gate is overridden, for the audit.")
    ] = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Show the pilot's record and take the flow full if it passes the gate; exit 1 if not."""
    with hub(config) as h:
        try:
            result = asyncio.run(rollout(h).promote(flow, actor(), force=force, reason=reason))
        except Conflict as exc:
            record = exc.detail.get("record")
            if json_:
                print_json({"promoted": False, "error": exc.message, "record": record})
            elif isinstance(record, dict):
                _print_record(record)
                err.print(f"refused: {exc.message}", markup=False)
            raise typer.Exit(EXIT_DOES_NOT_HOLD) from None
    if json_:
        print_json({"promoted": True, **result})
        return
    _print_record(result["record"])
    forced = " (forced past the gate)" if result["forced"] else ""
    out.print(
        f"{flow}: {result['from']} → full{forced}; {result['released']} held deliveries released",
        markup=False,
    )


def _pilot(stage: dict[str, Any]) -> str:
    parts = []
    if stage.get("when") is not None:
        parts.append(f"when {stage['when']}")
    if stage.get("share") is not None:
        parts.append(f"{stage['share']:g}% of keys")
    return ", ".join(parts)


def _print_record(record: dict[str, Any]) -> None:
    outside = record["outside"]
    lines = [
        f"pilot of {record['flow']} ({record['stage']}) since {record['pilot_since'] or '-'}",
        f"  delivered {record['delivered']}, dead {record['dead']}, "
        f"pending {record['pending']}, held {sum(record['held'].values())}",
        f"  outside the pilot ({outside['mode']}): held {outside['held']}"
        + (f" since {outside['held_since']}" if outside["held_since"] else "")
        + f", skipped {outside['skipped']}"
        + (
            f", {outside['fallback']['deliveries']} to {outside['fallback']['flow']}"
            if outside["fallback"]
            else ""
        ),
        f"  open incidents: {len(record['open_incidents'])}",
    ]
    run = record["reconciliation"]
    lines.append(
        "  last reconciliation: "
        + ("none" if run is None else f"run {run['id']}, {'clean' if run['clean'] else 'differs'}")
    )
    ready = record["readiness"]
    if ready is not None:
        gaps = ", ".join(str(g) for g in ready["gaps"])
        lines.append("  readiness: " + ("passed" if ready["passed"] else f"gaps: {gaps}"))
    for line in lines:
        out.print(line, markup=False)
    table = Table("gate rule", "verdict", "detail")
    for check in record["gate"]["checks"]:
        table.add_row(check["name"], "PASS" if check["passed"] else "FAIL", check["detail"])
    out.print(table)
