"""``maintenance add|list|cancel``: announce, show and cancel a downstream's maintenance
windows. Times are ISO 8601, in the topology's time zone unless they carry an offset."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
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
from interlink.errors import InputError
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
        tz, zone = h.topology.tz, h.topology.timezone
        try:
            result = maintenance(h).add(
                system,
                parse_time(start, tz, "--start"),
                parse_time(end, tz, "--end"),
                reason,
                actor=actor(),
                force=force,
                dry_run=dry_run,
            )
        except InputError as exc:
            refused = exc.detail.get("checks")
            if json_ or not isinstance(refused, dict):
                raise
            err.print(f"error: {exc.message}", markup=False)
            _suggest(refused, reason, config, zone)
            raise typer.Exit(2) from None
    if json_:
        print_json(result)
        return
    checks = result if dry_run else result["checks"]
    refusals = refusals_of(checks, force) if dry_run else []
    if dry_run:
        verdict = "would be refused" if refusals else "would be announced"
        out.print(f"dry run: the window {verdict}", markup=False)
        for problem in refusals:
            err.print(f"error: {problem}", markup=False)
    else:
        label = " (short notice)" if result["short_notice"] else ""
        out.print(
            f"window {result['id']}{label}: {system} from {_local(result['start_local'])} to "
            f"{_local(result['end_local'])}",
            markup=False,
        )
    _print_checks(checks, refusals)
    if refusals:
        _suggest(checks, reason, config, zone)
        raise typer.Exit(1)


QUIETEST = "the quietest comparable slot"


def refusals_of(checks: dict[str, Any], force: bool) -> list[str]:
    """What stops the window being announced: errors, and what only --force lifts."""
    return [*checks["errors"], *([] if force else checks["needs_force"])]


def suggestion(checks: dict[str, Any], reason: str, config: Path | None, zone: str) -> list[str]:
    """The quietest allowed slot, and the command line that announces it as it is."""
    slot = checks.get("quietest_slot")
    if not slot:
        return [
            "no slot of this length is allowed in this week or the next (notice, peak hours, "
            "other windows); try a shorter window"
        ]
    start = datetime.fromisoformat(slot["start_local"])
    end = datetime.fromisoformat(slot["end_local"])
    words = [
        "interlink", "maintenance", "add", checks["system"],
        "--start", start.isoformat(timespec="minutes"),
        "--end", end.isoformat(timespec="minutes"),
        "--reason", reason,
    ]  # fmt: skip
    if config is not None:
        words += ["-c", str(config)]
    expected = round(slot["expected_deliveries"])
    return [
        f"the quietest allowed slot is {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {zone} "
        f"(about {expected} deliveries expected); to announce it:",
        "  " + shlex.join(words),
    ]


def _suggest(checks: dict[str, Any], reason: str, config: Path | None, zone: str) -> None:
    for line in suggestion(checks, reason, config, zone):
        err.print(line, markup=False, soft_wrap=True)


def _print_checks(checks: dict[str, Any], refusals: Sequence[str] = ()) -> None:
    for warning in checks["warnings"]:
        # A refusal is printed as an error, and the quietest slot as a command line after it.
        if warning in refusals or (refusals and warning.startswith(QUIETEST)):
            continue
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
