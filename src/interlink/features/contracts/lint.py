"""Warnings for ``interlink check``: things that load but are probably wrong. Pure.

- a flow ``reads`` a field its document's contract does not define;
- a flow ``derives`` a field its document's contract does not define, or from a field that
  no document delivered to its source system defines;
- a scenario matcher looks at a field the contract does not define;
- a flow requires a scenario on a document type that lists none (everything would be held);
- a flow has both a ``map:`` and a hand-written ``reads:`` that disagrees with the map's
  lineage: impact analysis uses the lineage, so the ``reads:`` misleads whoever reads it;
- a document type's ``deadline`` or ``amount`` field is not defined by its (open) contract;
  a closed one (``additionalProperties: false``) makes that an error of loading instead;
- a flow's source system has no ``token_env``: it cannot submit over the API, only
  ``interlink push`` can load its documents;
- contacts have e-mail addresses but ``alerts.smtp`` is not set: no alert mail is sent.

Errors are for what can never work (the topology does not load); these load and may be meant.
"""

from __future__ import annotations

from interlink.config import Topology, located
from interlink.features.contracts.diff import schema_fields
from interlink.scenarios import when_fields

Loc = tuple[str | int, ...]


def _defined(fields: set[str], name: str) -> bool:
    if name in fields:
        return True
    # "lines.amount" is defined when "lines" is an array of objects with "amount", which
    # schema_fields already yields; a read of a whole object is defined by its own entry.
    return any(f.startswith(name + ".") for f in fields)


def render(topology: Topology) -> list[str]:
    """The warnings as ``file:line: warning: message``, lines from the topology file."""
    return located(topology, warnings(topology), warning=True)


def warnings(topology: Topology) -> list[tuple[Loc, str]]:
    """Each warning with where it is in the file (a key path) and what it says."""
    found: list[tuple[Loc, str]] = []
    fields_of: dict[str, set[str] | None] = {}
    for name, doc in topology.documents.items():
        schema = doc.contract_schema
        fields_of[name] = set(schema_fields(schema)) if schema else None
    for name, doc in sorted(topology.documents.items()):
        fields = fields_of[name]
        if fields is None:
            continue
        for field in when_fields(doc.scenarios):
            if not _defined(fields, field):
                found.append(
                    (
                        ("documents", name, "scenarios"),
                        f"documents.{name}.scenarios: matchers use {field!r}, which the "
                        f"contract of {name} does not define",
                    )
                )
        for role in ("deadline", "amount"):
            named = getattr(doc, role)
            if named and not _defined(fields, named):
                found.append(
                    (
                        ("documents", name, role),
                        f"documents.{name}.{role}: {named!r} is not defined by the contract of "
                        f"{name}; the upstream was never told to send it",
                    )
                )
    found.extend(_tokenless_sources(topology))
    found.extend(_mail_without_smtp(topology))
    found.extend(_reads_against_lineage(topology))
    for flow in sorted(topology.flows.values(), key=lambda f: f.name):
        fields = fields_of.get(flow.document)
        where = f"flows.{flow.name}"
        if fields is not None:
            for i, read in enumerate(flow.reads or []):
                if not _defined(fields, read):
                    found.append(
                        (
                            ("flows", flow.name, "reads", i),
                            f"{where}.reads: {read!r} is not defined by the contract of "
                            f"{flow.document}",
                        )
                    )
            for out in flow.derives or {}:
                if not _defined(fields, out):
                    found.append(
                        (
                            ("flows", flow.name, "derives", out),
                            f"{where}.derives: {out!r} is not defined by the contract of "
                            f"{flow.document}",
                        )
                    )
        incoming: set[str] = set()
        known = True
        for upstream in topology.flows_to(flow.source):
            # A mapped flow delivers its map's fields, not its document's.
            upstream_fields = (
                set(upstream.map.lineage())
                if upstream.map is not None
                else fields_of.get(upstream.document)
            )
            if upstream_fields is None:
                known = False
            else:
                incoming |= upstream_fields
        if known and topology.flows_to(flow.source):
            for out, source in (flow.derives or {}).items():
                if not _defined(incoming, source):
                    found.append(
                        (
                            ("flows", flow.name, "derives", out),
                            f"{where}.derives: {out!r} comes from {source!r}, which no "
                            f"document sent to {flow.source} defines",
                        )
                    )
        flow_doc = topology.documents.get(flow.document)
        if flow.require_scenario and flow_doc is not None and not flow_doc.scenarios:
            found.append(
                (
                    ("flows", flow.name, "require_scenario"),
                    f"{where}: require_scenario is set but {flow.document} lists no "
                    "scenarios: every document would be held",
                )
            )
    return found


def _reads_against_lineage(topology: Topology) -> list[tuple[Loc, str]]:
    """Mapped flows whose hand-written ``reads:`` lacks a field the map reads, or lists one it
    never reads (reading an object covers the fields inside it, either way)."""
    found: list[tuple[Loc, str]] = []
    for name, flow in sorted(topology.flows.items()):
        if flow.map is None or flow.reads is None:
            continue
        doc = topology.documents.get(flow.document)
        lineage = flow.map.lineage(when_fields(doc.scenarios) if doc is not None else ())
        mapped = sorted({field for sources in lineage.values() for field in sources})
        lacking = [m for m in mapped if not any(_within(m, r) for r in flow.reads)]
        unread = [r for r in flow.reads if not any(_within(m, r) or _within(r, m) for m in mapped)]
        if not lacking and not unread:
            continue
        said = [
            *([f"the map reads {_names(lacking)}, which reads: lacks"] if lacking else []),
            *([f"reads: lists {_names(unread)}, which the map never reads"] if unread else []),
        ]
        found.append(
            (
                ("flows", name, "reads"),
                f"flows.{name}.reads: disagrees with its map: {'; '.join(said)}; impact "
                "analysis uses the map's lineage, not reads:",
            )
        )
    return found


def _within(field: str, read: str) -> bool:
    """Whether ``field`` is ``read`` or inside it (dotted)."""
    return field == read or field.startswith(read + ".")


def _names(fields: list[str]) -> str:
    return ", ".join(repr(f) for f in fields)


def _tokenless_sources(topology: Topology) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    for name, system in sorted(topology.systems.items()):
        sent = sorted(f.name for f in topology.flows_from(name))
        if sent and not system.token_env:
            found.append(
                (
                    ("systems", name),
                    f"systems.{name}: sends {', '.join(sent)} but has no token_env, so it "
                    f"cannot submit over the API; only `interlink push --source {name}` can "
                    "load its documents",
                )
            )
    return found


def _mail_without_smtp(topology: Topology) -> list[tuple[Loc, str]]:
    if topology.alerts.smtp is not None:
        return []
    mailed = [
        (name, i)
        for name, system in sorted(topology.systems.items())
        for i, contact in enumerate(system.contacts)
        if contact.email
    ]
    if not mailed:
        return []
    name, i = mailed[0]
    unreached = sorted(
        {
            name
            for name, system in topology.systems.items()
            for c in system.contacts
            if c.email and not c.notify
        }
    )
    also = (
        f"; contacts of {', '.join(unreached)} have no notify: URL either and get no alert"
        if unreached
        else ""
    )
    return [
        (
            ("systems", name, "contacts", i, "email"),
            f"{len(mailed)} contact(s) have an e-mail address but alerts.smtp is not set: no "
            f"alert mail can be sent{also}",
        )
    ]
