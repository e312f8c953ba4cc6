"""``maintenance add|list|cancel``: announce, show and cancel a downstream's maintenance
windows. Times are ISO 8601, in the topology's time zone unless they carry an offset."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from interlink.cli.common import (
    ConfigOption,
    JsonOption,
    actor,
    err,
    hub,
    out,
    print_json,
    shorten,
)
from interlink.features.maintenance.service import maintenance
from interlink.times import parse_time

app = typer.Typer(
    help="Announce, list and cancel maintenance windows.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="maintenance")


@app.command("add")
def add(
    system: Annotated[str, typer.Argument(help="The downstream system.", show_default=False)],
    start: Annotated[str, typer.Option("--start", help="ISO 8601 start.", show_default=False)],
    end: Annotated[str, typer.Option("--end", help="ISO 8601 end.", show_default=False)],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (a release, a migration...).", show_default=False)
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Announce despite short notice or peak hours.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show the checks; announce nothing.")
    ] = False,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Announce a maintenance window: the system's deliveries are held while it is open."""
    with hub(config) as h:
        tz = h.topology.tz
        result = maintenance(h).add(
            system,
            parse_time(start, tz, "--start"),
            parse_time(end, tz, "--end"),
            reason,
            actor=actor(),
            force=force,
            dry_run=dry_run,
        )
    if json_:
        print_json(result)
        return
    checks = result if dry_run else result["checks"]
    if dry_run:
        verdict = "would be announced" if checks["ok"] else "would be refused"
        out.print(f"dry run: the window {verdict}", markup=False)
        for problem in checks["errors"]:
            err.print(f"refused: {problem}", markup=False)
    else:
        label = " (short notice)" if result["short_notice"] else ""
        out.print(
            f"window {result['id']}{label}: {system} from {_local(result['start_local'])} to "
            f"{_local(result['end_local'])}",
            markup=False,
        )
    _print_checks(checks)
    if dry_run and not checks["ok"]:
        raise typer.Exit(1)


def _print_checks(checks: dict[str, Any]) -> None:
    for warning in checks["warnings"]:
        out.print(f"warning: {warning}", markup=False)
    backlog = ", ".join(f"{flow}: ~{n}" for flow, n in checks["expected_backlog"].items())
    if backlog:
        out.print(f"expected backlog: {backlog}", markup=False)
    deadlines = checks["deadlines"]
    if deadlines["total"]:
        keys = ", ".join(d["key"] for d in deadlines["documents"][:5])
        out.print(f"deadlines inside the window: {deadlines['total']} ({keys}…)", markup=False)


def _local(iso: str) -> str:
    return iso[:16].replace("T", " ")


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Past and cancelled windows too.")] = False,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Upcoming and open maintenance windows."""
    with hub(config) as h:
        items = maintenance(h).windows(include_all=all_)
        tz_name = h.topology.timezone
    if json_:
        print_json({"items": items})
        return
    if not items:
        out.print("no maintenance windows" + ("" if all_ else " ahead"), markup=False)
        return
    table = Table(title=f"maintenance windows ({tz_name})", title_justify="left")
    for column in ("id", "system", "start", "end", "state", "notice", "reason", "flows"):
        table.add_column(column)
    for w in items:
        table.add_row(
            str(w["id"]),
            w["system"],
            _local(w["start_local"]),
            _local(w["end_local"]),
            w["state"],
            "short notice" if w["short_notice"] else "",
            shorten(w["reason"], 40),
            ", ".join(f["flow"] for f in w["affected_flows"]),
        )
    out.print(table)


@app.command("cancel")
def cancel(
    window_id: Annotated[int, typer.Argument(help="The window's id.", show_default=False)],
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Cancel a window; if it is open, its held deliveries are released."""
    with hub(config) as h:
        result = maintenance(h).cancel(window_id, actor())
    if json_:
        print_json(result)
        return
    out.print(f"cancelled window {window_id} ({result['system']})", markup=False)
