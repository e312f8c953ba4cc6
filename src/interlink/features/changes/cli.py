"""``change announce|list|show|ack``: announce a change to everyone it touches, and see who
has read it. Times are ISO 8601, in the topology's time zone unless they carry an offset."""

from __future__ import annotations

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
    print_json,
    shorten,
)
from interlink.errors import InputError
from interlink.features.changes.impact import KINDS
from interlink.features.changes.service import changes
from interlink.features.contracts.registry import parse_schema
from interlink.features.incidents.service import MAX_ATTACHMENT_BYTES
from interlink.times import local_text, parse_time

app = typer.Typer(
    help="Announce changes to the systems they touch and see who has acknowledged them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

IdArgument = Annotated[int, typer.Argument(help="The change's id.", show_default=False)]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="change")


def _read(path: Path, limit: int | None = None) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(limit) if limit is not None else handle.read()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


@app.command("announce")
def announce(
    system: Annotated[
        str, typer.Argument(help="The system the change belongs to.", show_default=False)
    ],
    title: Annotated[str, typer.Option("--title", help="What changes.", show_default=False)],
    at: Annotated[str, typer.Option("--at", help="When it ships (ISO 8601).", show_default=False)],
    kind: Annotated[
        str, typer.Option("--kind", help=f"One of {', '.join(KINDS)}.", show_default=False)
    ],
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="A field whose meaning changes (repeatable)."),
    ] = None,
    code: Annotated[
        list[str] | None,
        typer.Option("--code", help="TABLE:VALUE, a code value added or changed (repeatable)."),
    ] = None,
    schema: Annotated[
        Path | None, typer.Option("--schema", help="The proposed JSON Schema (kind contract).")
    ] = None,
    document: Annotated[
        str | None,
        typer.Option("--document", help="The document type --schema is for, when not implied."),
    ] = None,
    description_file: Annotated[
        Path | None, typer.Option("--description-file", help="The description, in markdown.")
    ] = None,
    attach: Annotated[
        list[Path] | None,
        typer.Option("--attach", help="A screenshot or slides (png, jpeg, gif, webp, pdf, txt)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what it touches and whom it tells.")
    ] = False,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Announce a change: weigh what it touches, record it, tell every affected contact."""
    proposed = parse_schema(_read(schema), str(schema)) if schema is not None else None
    description = ""
    if description_file is not None:
        try:
            description = _read(description_file).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{description_file}: not UTF-8 text") from None
    files = [(p.name, _read(p, MAX_ATTACHMENT_BYTES + 1)) for p in attach or []]
    with hub(config) as h:
        when = parse_time(at, h.topology.tz, "--at")
        if dry_run:
            weighed = changes(h).weigh(
                system, kind, fields=field, codes=code, schema=proposed, document=document
            )
            if json_:
                print_json(weighed)
            else:
                _print_affected(weighed["affected"])
                for r in weighed["recipients"]:
                    out.print(f"would tell {r['system']} {r['role']}: {_who(r)}", markup=False)
            return
        result = changes(h).announce(
            system,
            title=title,
            at=when,
            kind=kind,
            actor=actor(),
            description=description,
            fields=field,
            codes=code,
            schema=proposed,
            document=document,
            attachments=files,
        )
        zone = h.topology.tz
    if json_:
        print_json(result)
        return
    out.print(
        f"change {result['id']}: {system} {kind} on {local_text(when, zone)}: {result['title']}",
        markup=False,
    )
    _print_affected(result["affected"])
    _print_recipients(result["recipients"])


def _who(r: dict[str, Any]) -> str:
    return str(r.get("email") or r.get("name") or "(chat)")


def _print_affected(affected: list[dict[str, Any]]) -> None:
    if not affected:
        out.print("touches no flow", markup=False)
        return
    for a in affected:
        out.print(f"{a['flow']} ({a['from']} → {a['to']}):", markup=False)
        for reason in a["reasons"]:
            out.print(f"  - {reason}", markup=False)


def _print_recipients(recipients: list[dict[str, Any]]) -> None:
    if not recipients:
        out.print("nobody to tell: no affected system has a contact with mail or chat")
        return
    for r in recipients:
        if r["acknowledged_at"]:
            state = f"acknowledged {r['acknowledged_at']}"
        elif r["notified_at"]:
            state = "told, not acknowledged"
        else:
            state = f"not told yet{': ' + r['notify_error'] if r['notify_error'] else ''}"
        out.print(f"{r['id']}  {r['system']} {r['role']} {_who(r)}: {state}", markup=False)


@app.command("list")
def list_(
    system: Annotated[
        str | None, typer.Option("--system", help="Announced by or touching this system.")
    ] = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Changes, latest shipping first, with how many have acknowledged."""
    with hub(config) as h:
        items = changes(h).search(system=system)
        zone = h.topology.tz
    if json_:
        print_json(items)
        return
    if not items:
        out.print("no changes", markup=False)
        return
    table = Table()
    for column in ("id", "ships", "system", "kind", "title", "touches", "acknowledged"):
        table.add_column(column)
    for c in items:
        table.add_row(
            str(c["id"]),
            local_text(parse_time(c["at"], zone, "at"), zone),
            c["system"],
            c["kind"],
            shorten(c["title"], 40),
            ", ".join(c["systems"]),
            f"{c['acknowledged']}/{c['recipients_total']}",
        )
    out.print(table)


@app.command("show")
def show(change_id: IdArgument, config: ConfigOption = None, json_: JsonOption = False) -> None:
    """One change: what it touches and why, and who has and hasn't acknowledged it."""
    with hub(config) as h:
        c = changes(h).get(change_id)
        zone = h.topology.tz
    if json_:
        print_json(c)
        return
    when = local_text(parse_time(c["at"], zone, "at"), zone)
    out.print(f"change {c['id']}: {c['system']} {c['kind']} on {when}: {c['title']}", markup=False)
    if c["description"]:
        out.print(c["description"], markup=False)
    _print_affected(c["affected"])
    _print_recipients(c["recipients"])


@app.command("ack")
def ack(
    change_id: IdArgument,
    recipient: Annotated[
        int, typer.Option("--recipient", help="The recipient's id (see `change show`).")
    ],
    config: ConfigOption = None,
) -> None:
    """Acknowledge a change on a recipient's behalf (they confirmed by phone, in a meeting)."""
    with hub(config) as h:
        c = changes(h).acknowledge(change_id, recipient, actor())
    out.print(
        f"change {change_id}: {c['acknowledged']} of {c['recipients_total']} acknowledged",
        markup=False,
    )
