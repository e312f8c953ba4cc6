"""``interlink reconcile FLOW``: compare a flow's deliveries with the downstream's records."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from interlink.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_DOES_NOT_HOLD,
    EXIT_OK,
    ConfigOption,
    JsonOption,
    actor,
    err,
    hub,
    out,
    print_json,
)
from interlink.errors import InputError
from interlink.features.reconcile import report as render
from interlink.features.reconcile.report import ITEM_COLUMNS
from interlink.features.reconcile.service import parse_map, parse_tolerance, resolve_period
from interlink.features.reconcile.service import reconcile as reconciler
from interlink.features.reconcile.sources import check_encoding

FORMATS = ("table", "csv", "md")


def reconcile(
    flow: Annotated[str, typer.Argument(help="The flow to reconcile.")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="The downstream's export: CSV, XLSX or NDJSON. Without it, the flow's "
            "reconcile.endpoint is queried.",
        ),
    ] = None,
    map_: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="Columns: key=COL,amount=COL,status=COL,date=COL,currency=COL,revision=COL.",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="The export's text encoding (utf-8, gb18030, gbk, big5, utf-16, latin-1, "
            "cp1252, shift_jis, ...) [default: UTF-8, else GB18030].",
        ),
    ] = None,
    day: Annotated[
        str | None, typer.Option("--date", help="That whole day, in the topology's timezone.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Documents received at or after this time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Documents received before this time.")
    ] = None,
    tolerance: Annotated[
        str | None, typer.Option("--tolerance", help="Amounts this close match, e.g. 0.01.")
    ] = None,
    repush_missing: Annotated[
        bool,
        typer.Option("--repush-missing", help="Re-push what is missing downstream."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --repush-missing: only count.")
    ] = False,
    format_: Annotated[str, typer.Option("--format", help="table, csv or md.")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the report (--format) to this file.")
    ] = None,
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Compare what Interlink delivered on FLOW with the downstream's records.

    Exit code 0 when nothing differs (timing differences alone are not differences), 1 when
    something differs, 2 on bad input, including an export with rows that could not be read:
    such a comparison is incomplete and never reported as clean.
    """
    if format_ not in FORMATS:
        raise InputError(f"--format: use one of {', '.join(FORMATS)}")
    if dry_run and not repush_missing:
        raise InputError("--dry-run goes with --repush-missing")
    check_encoding(encoding)  # before the store is opened: a text encoding or nothing
    columns = parse_map(map_)
    tol = parse_tolerance(tolerance)
    with hub(config) as h:
        start, end = resolve_period(h.topology.tz, day, since, until)
        service = reconciler(h)
        records = service.open_source(flow, file, encoding, start, end)
        result = service.run(
            flow,
            records,
            since=start,
            until=end,
            columns=columns,
            tolerance=tol,
            actor=actor(),
        )
        body = result.to_json()
        tz = h.topology.tz
        if repush_missing:
            if not result.complete:
                raise InputError(
                    "not re-pushing: the comparison is incomplete (rows could not be read)"
                )
            suspect = render.map_suspect(body)
            if suspect is not None and not dry_run:
                raise InputError(f"not re-pushing: {suspect}")
            assert result.run_id is not None
            body["repush"] = service.repush_missing(result.run_id, actor(), dry_run=dry_run)
    if output is not None:
        text = render.to_markdown(body, tz) if format_ == "md" else render.to_csv(body)
        if format_ == "table":
            text = "\n".join(render.summary_lines(body, tz)) + "\n"
        output.write_text(text, encoding="utf-8")
    if json_:
        print_json(body)
    elif format_ == "csv" and output is None:
        out.file.write(render.to_csv(body))
    elif format_ == "md" and output is None:
        out.file.write(render.to_markdown(body, tz))
    else:
        _print_table(body, tz, flow)
    if not body["complete"]:
        err.print(render.verdict(body), markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_DOES_NOT_HOLD if body["differences"] else EXIT_OK)


def _print_table(body: dict[str, Any], tz: tzinfo, flow: str) -> None:
    # The verdict first: a page of "missing" rows read before it invites a wrong re-push.
    lines = render.summary_lines(body, tz)
    suspect = render.map_suspect(body) is not None
    head = len(render.headline(body))
    for line in lines[:head]:
        out.print(Text(line, style="bold"))
    items = body["items"]
    if items:
        shown = 5 if suspect else 200
        table = Table(*ITEM_COLUMNS)
        for row in render.table_rows(body, limit=shown):
            table.add_row(*row)
        out.print(table)
        if len(items) > shown:
            out.print(f"... {len(items) - shown} more (use --format csv --output FILE)")
    for line in lines[head:]:
        out.print(line, highlight=False)
    repush = body.get("repush")
    if isinstance(repush, dict):
        verb = "would re-push" if repush["dry_run"] else "re-pushed"
        out.print(
            f"{verb} {repush['repushed']} of {repush['missing']} missing; "
            f"{repush['on_their_way']} already on their way"
        )
    elif body["complete"] and body["categories"].get("missing") and not suspect:
        out.print(
            f"next: see what would be sent again with `interlink reconcile {flow} ... "
            "--repush-missing --dry-run` (the same options as this run)"
        )


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile)
