"""``incidents``: the incident register from the command line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from interlink.cli.common import (
    ConfigOption,
    JsonOption,
    actor,
    hub,
    out,
    parse_time,
    print_json,
    shorten,
)
from interlink.config import Topology
from interlink.errors import InputError
from interlink.features.incidents.service import (
    MAX_ATTACHMENT_BYTES,
    SEVERITIES,
    IncidentFilter,
    incidents,
)

app = typer.Typer(
    help="The incident register: the one official record of problems.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

IdArgument = Annotated[int, typer.Argument(help="The incident's id.", show_default=False)]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="incidents")


def _local(text: str | None, topo: Topology) -> str:
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone(topo.tz).strftime("%Y-%m-%d %H:%M")


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="open, investigating or resolved.")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="Involving this system.")] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="Involving this flow.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Registered at or after (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Registered before (ISO 8601).")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", help="Text in title, description, resolution or timeline."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 50,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """List incidents, newest first."""
    with hub(config) as h:
        f = IncidentFilter(
            status=status,
            system=system,
            flow=flow,
            since=parse_time(since, "--since", h.topology),
            until=parse_time(until, "--until", h.topology),
            text=search,
        )
        found = incidents(h).search(f, limit=limit)
        if json_:
            print_json(found)
            return
        table = Table()
        for column in (
            "id",
            "status",
            "severity",
            "registered",
            "title",
            "systems",
            "x",
            "assignee",
        ):
            table.add_column(column, justify="right" if column in ("id", "x") else "left")
        for i in found:
            table.add_row(
                str(i["id"]),
                i["status"],
                i["severity"],
                _local(i["registered_at"], h.topology),
                shorten(i["title"], 50),
                ", ".join(i["systems"]),
                str(i["occurrences"]),
                i["assignee"] or "",
            )
        out.print(table)
        if not found:
            out.print("no incidents", markup=False)


@app.command("show")
def show(incident_id: IdArgument, config: ConfigOption = None, json_: JsonOption = False) -> None:
    """An incident with its timeline and attachments."""
    with hub(config) as h:
        i = incidents(h).get(incident_id)
        if json_:
            print_json(i)
            return
        topo = h.topology
        lines = [
            f"#{i['id']} {i['title']}",
            f"status: {i['status']}   severity: {i['severity']}   category: {i['category']}",
            f"registered: {_local(i['registered_at'], topo)} by {i['registered_by']}",
            f"assignee: {i['assignee'] or '-'}",
            f"systems: {', '.join(i['systems']) or '-'}   flows: {', '.join(i['flows']) or '-'}",
            f"occurrences: {i['occurrences']}   last seen: {_local(i['last_seen_at'], topo)}",
        ]
        if i["documents"]:
            lines.append(f"documents: {', '.join(i['documents'][:20])}")
        if i["description"]:
            lines += ["", i["description"]]
        if i["resolution"]:
            lines += [
                "",
                f"resolution ({_local(i['resolved_at'], topo)}, {i['resolved_by']}):",
                i["resolution"],
            ]
        lines += ["", "timeline:"]
        lines += [
            f"  {_local(e['at'], topo)}  {e['actor']}  [{e['kind']}] {e['text']}"
            for e in i["timeline"]
        ]
        if i["attachments"]:
            lines += ["", "attachments:"]
            lines += [
                f"  {a['id']}: {a['filename']} ({a['content_type']}, {a['size']} bytes)"
                for a in i["attachments"]
            ]
        out.print("\n".join(lines), markup=False, highlight=False)


@app.command("new")
def new(
    title: Annotated[str, typer.Option("--title", help="What happened, in one line.")],
    system: Annotated[
        list[str] | None, typer.Option("--system", help="A system involved (repeatable).")
    ] = None,
    flow: Annotated[
        list[str] | None, typer.Option("--flow", help="A flow involved (repeatable).")
    ] = None,
    document: Annotated[
        list[str] | None, typer.Option("--document", help="A document id (repeatable).")
    ] = None,
    severity: Annotated[
        str, typer.Option("--severity", help=f"One of {', '.join(SEVERITIES)}.")
    ] = "medium",
    category: Annotated[str, typer.Option("--category", help="e.g. rejected, auth.")] = "other",
    description: Annotated[str, typer.Option("--description", help="The details.")] = "",
    assignee: Annotated[str | None, typer.Option("--assignee", help="Who takes it.")] = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Open an incident by hand."""
    with hub(config) as h:
        i = incidents(h).new(
            title=title,
            actor=actor(),
            description=description,
            category=category,
            severity=severity,
            systems=system or [],
            flows=flow or [],
            documents=document or [],
            assignee=assignee,
        )
    if json_:
        print_json(i)
    else:
        out.print(f"incident {i['id']} opened: {i['title']}", markup=False)


@app.command("resolve")
def resolve(
    incident_id: IdArgument,
    resolution: Annotated[
        str, typer.Option("--resolution", help="The answer: cause and fix.", show_default=False)
    ] = "",
    config: ConfigOption = None,
) -> None:
    """Resolve an incident; a resolution text is required."""
    with hub(config) as h:
        i = incidents(h).resolve(incident_id, resolution, actor())
    out.print(f"incident {i['id']} resolved", markup=False)


@app.command("comment")
def comment(
    incident_id: IdArgument,
    text: Annotated[str, typer.Argument(help="The comment.", show_default=False)],
    config: ConfigOption = None,
) -> None:
    """Add a comment to an incident's timeline."""
    with hub(config) as h:
        incidents(h).comment(incident_id, text, actor())
    out.print(f"incident {incident_id}: comment added", markup=False)


@app.command("assign")
def assign(
    incident_id: IdArgument,
    name: Annotated[str, typer.Argument(help="Who takes it.", show_default=False)],
    config: ConfigOption = None,
) -> None:
    """Assign an incident to someone."""
    with hub(config) as h:
        incidents(h).assign(incident_id, name, actor())
    out.print(f"incident {incident_id}: assigned to {name}", markup=False)


@app.command("status")
def set_status(
    incident_id: IdArgument,
    status: Annotated[str, typer.Argument(help="open or investigating.", show_default=False)],
    config: ConfigOption = None,
) -> None:
    """Set an incident's status (use `resolve` to resolve it)."""
    with hub(config) as h:
        incidents(h).update(incident_id, actor(), status=status)
    out.print(f"incident {incident_id}: {status}", markup=False)


@app.command("attach")
def attach(
    incident_id: IdArgument,
    file: Annotated[Path, typer.Argument(help="A png, jpeg, gif, webp, pdf or txt file.")],
    config: ConfigOption = None,
) -> None:
    """Attach a file (a screenshot, a log) to an incident."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_ATTACHMENT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{file}: {exc.strerror or exc}") from None
    with hub(config) as h:
        a = incidents(h).attach(incident_id, file.name, data, actor())
    out.print(f"incident {incident_id}: attached {a['filename']} as {a['id']}", markup=False)


@app.command("export")
def export(
    format_: Annotated[str, typer.Option("--format", help="csv or md.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write here instead of to stdout.")
    ] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    config: ConfigOption = None,
) -> None:
    """Export the register as CSV or Markdown."""
    with hub(config) as h:
        text = incidents(h).export(format_, IncidentFilter(status=status))
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: {exc.strerror or exc}") from None
    out.print(f"wrote {output}", markup=False)


@app.command("stats")
def stats(config: ConfigOption = None, json_: JsonOption = False) -> None:
    """Open incidents, mean time to resolve, and the problems that recur most."""
    with hub(config) as h:
        figures = incidents(h).stats()
    if json_:
        print_json(figures)
        return
    lines = [
        f"open: {figures['open']} of {figures['total']}",
        f"MTTR: {_hours(figures['mttr_hours'])}",
    ]
    for title, key in (
        ("by system", "mttr_hours_by_system"),
        ("by category", "mttr_hours_by_category"),
    ):
        if figures[key]:
            lines.append(f"MTTR {title}:")
            lines += [f"  {name}: {_hours(v)}" for name, v in figures[key].items()]
    if figures["recurring"]:
        lines.append("recurring problems:")
        lines += [
            f"  {r['incidents']} incidents, {r['occurrences']} occurrences: {r['problem']}"
            for r in figures["recurring"]
        ]
    out.print("\n".join(lines), markup=False)


def _hours(value: Any) -> str:
    return "-" if value is None else f"{value:.2f} h"
