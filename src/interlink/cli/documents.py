"""``show ID|KEY``: a document (or every revision of a key) with its deliveries and attempts,
or one delivery by its number."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from interlink.cli.common import ConfigOption, JsonOption, hub, local_time, out, print_json
from interlink.config import Topology
from interlink.errors import NotFound
from interlink.model import Delivery, Document

_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def show(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="ID|KEY",
            help="A document id, a business key, or a delivery number.",
            show_default=False,
        ),
    ],
    type_: Annotated[
        str | None,
        typer.Option("--type", help="Read REF as a business key of this document type."),
    ] = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Show a document with its payload, revisions, deliveries and every attempt."""
    with hub(config) as h:
        if type_ is None and ref.isdigit():
            try:
                delivery = h.delivery(int(ref))
            except NotFound:
                pass  # a numeric business key
            else:
                if json_:
                    print_json({"delivery": delivery.to_json(with_attempts=True)})
                else:
                    out.print(delivery_view(delivery, h.topology))
                return
        docs: list[Document] = []
        if type_ is None and _ULID.fullmatch(ref):
            with contextlib.suppress(NotFound):
                docs = [h.document(ref)]
        if not docs:
            if type_ is not None and type_ not in h.topology.documents:
                known = ", ".join(sorted(h.topology.documents))
                raise NotFound(f"unknown document type {type_!r} (known: {known})")
            docs = h.documents(ref, type_)
        if not docs:
            raise NotFound(f"no document with id or key {ref!r}")
        if json_:
            print_json({"documents": [d.to_json() for d in docs]})
            return
        for doc in docs:
            out.print(document_view(doc, h.topology))


def document_view(doc: Document, topology: Topology) -> RenderableType:
    facts = Table.grid(padding=(0, 2))
    facts.add_row("id", doc.id)
    facts.add_row("source", doc.source)
    facts.add_row("scenario", doc.scenario or "-")
    facts.add_row("received", local_time(doc.received_at, topology))
    if doc.deadline:
        facts.add_row("due", local_time(doc.deadline, topology))
    parts: list[RenderableType] = [facts, JSON(doc.payload_text)]
    for d in doc.deliveries:
        parts.append(delivery_view(d, topology))
    title = f"{doc.type} {doc.key} rev {doc.revision}"
    return Panel(Group(*parts), title=Text(title), title_align="left")


def delivery_view(d: Delivery, topology: Topology) -> RenderableType:
    heading = Text.assemble(
        (f"delivery {d.id}", "bold"),
        f"  {d.flow} → {d.system}  rev {d.revision}  ",
        (d.state, "green" if d.status == "delivered" else "red" if d.status == "dead" else ""),
        f"  attempts {d.attempts}",
    )
    if not d.attempt_log:
        return Group(heading, Text("  no attempts yet", style="dim"))
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("time")
    table.add_column("code", justify="right")
    table.add_column("outcome")
    table.add_column("elapsed", justify="right")
    table.add_column("detail")
    for a in d.attempt_log:
        outcome = f"{a.outcome} (probe)" if a.probe else a.outcome
        table.add_row(
            local_time(a.started_at, topology),
            str(a.status_code) if a.status_code is not None else "-",
            outcome,
            f"{a.elapsed_ms:.0f} ms",
            a.detail,
        )
    return Group(heading, table)
