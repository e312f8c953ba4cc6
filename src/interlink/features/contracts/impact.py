"""Who a contract change breaks: consumers by the fields they read, the producer, and systems
further down the network that re-emit what they received. Pure functions over a topology.

- A flow of the document type is a consumer. It breaks when a consumer-side change touches a
  field it ``reads`` (a flow without ``reads`` reads everything). A change to an object touches
  the fields inside it, and a change inside a read object touches that object.
- The sources of the document type's flows are the producers; every producer-side change
  breaks them (and any re-push of stored history).
- Transitive: from each broken consumer system, every flow out of it is a path onward. A flow
  with ``derives: {field_out: field_in}`` carries the change only when one of its ``field_in``
  is affected, and then its affected fields are the matching ``field_out``; a flow without
  ``derives`` is a candidate path carrying everything. The walk continues while the next
  flow reads an affected field, and never visits a system twice on one path.
- A flow with a ``map:`` reads what its map's lineage says, not its hand-written ``reads``:
  each break names the downstream fields it breaks, and those fields (the names the next
  system received) are what travels on, through ``derives`` or that system's own map.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from interlink.config import Flow, Topology
from interlink.features.contracts.diff import Change
from interlink.scenarios import when_fields

EVERYTHING = "*"


def touches(change_field: str, read: str) -> bool:
    """Whether a change at ``change_field`` touches the read field ``read`` (dotted)."""
    if read == EVERYTHING:
        return True
    if change_field == "":
        return True
    return (
        change_field == read
        or change_field.startswith(read + ".")
        or read.startswith(change_field + ".")
        or _wildcard(change_field, read)
    )


def _wildcard(change_field: str, read: str) -> bool:
    parts, other = change_field.split("."), read.split(".")
    n = min(len(parts), len(other))
    return all(a in (b, "*") or b == "*" for a, b in zip(parts[:n], other[:n], strict=True))


def lineage(flow: Flow, topology: Topology | None = None) -> dict[str, list[str]]:
    """A mapped flow's lineage; with the topology, a value chosen by scenario also reads the
    fields the document type's scenarios match on."""
    assert flow.map is not None
    doc = topology.documents.get(flow.document) if topology is not None else None
    return flow.map.lineage(when_fields(doc.scenarios) if doc is not None else ())


def _reads(flow: Flow, topology: Topology | None = None) -> list[str]:
    if flow.map is not None:
        return sorted({s for sources in lineage(flow, topology).values() for s in sources})
    return list(flow.reads) if flow.reads is not None else [EVERYTHING]


def _reads_some(flow: Flow) -> bool:
    """Whether the flow says which fields it reads (a map or ``reads``), not everything."""
    return flow.map is not None or flow.reads is not None


def broken_downstream(
    flow: Flow, fields: Iterable[str], topology: Topology | None = None
) -> list[str]:
    """The downstream fields of a mapped flow that read any of ``fields`` (deepest only)."""
    fields = list(fields)
    hit = [
        target
        for target, sources in lineage(flow, topology).items()
        if any(f == EVERYTHING or touches(f, s) for f in fields for s in sources)
    ]
    return [t for t in hit if not any(o.startswith(t + ".") for o in hit)]


def reads_field(flow: Flow, change: Change, topology: Topology | None = None) -> str | None:
    """The read field of ``flow`` that ``change`` touches, or None.

    A change at the document itself (opening its content model, say) touches only flows that
    read everything, except a change of the document's own type, which touches every flow.
    """
    if change.field == "" and _reads_some(flow) and not change.rule.startswith("type_"):
        return None
    for read in _reads(flow, topology):
        if touches(change.field, read):
            return read
    return None


@dataclass
class Consumer:
    flow: str
    system: str
    breaks: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"flow": self.flow, "system": self.system, "breaks": self.breaks}


@dataclass
class Path:
    system: str
    systems: list[str]
    flows: list[str]
    fields: list[str]
    precise: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "path": self.systems,
            "flows": self.flows,
            "fields": self.fields,
            "precise": self.precise,
            "text": " → ".join(self.systems),
        }


@dataclass
class Impact:
    document: str
    consumers: list[Consumer]
    unaffected: list[str]  # consumer flows no change touches
    producers: list[str]  # upstream systems broken by producer-side changes
    producer_changes: list[Change]
    paths: list[Path]
    notes: list[Change]

    @property
    def breaking(self) -> bool:
        return bool(self.consumers or self.producer_changes)

    def systems(self) -> list[str]:
        names = [c.system for c in self.consumers] + list(self.producers)
        names += [p.system for p in self.paths]
        return sorted(dict.fromkeys(names))

    def to_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "breaking": self.breaking,
            "consumers": [c.to_json() for c in self.consumers],
            "unaffected_flows": self.unaffected,
            "producer": {
                "systems": self.producers,
                "breaks": [c.to_json() for c in self.producer_changes],
            },
            "transitive": [p.to_json() for p in self.paths],
            "notes": [c.to_json() for c in self.notes],
            "systems": self.systems(),
        }


def assess(topology: Topology, document: str, changes: Iterable[Change]) -> Impact:
    changes = list(changes)
    flows = topology.flows_for(document)
    consumers: list[Consumer] = []
    unaffected: list[str] = []
    for flow in flows:
        found = Consumer(flow.name, flow.target)
        for change in changes:
            if not change.breaks_consumers:
                continue
            read = reads_field(flow, change, topology)
            if read is None:
                continue
            broken = {**change.to_json(), "read": read}
            if flow.map is not None:
                broken["downstream"] = broken_downstream(
                    flow, [change.field or EVERYTHING], topology
                )
                broken["message"] += f" (breaks {', '.join(broken['downstream'])} downstream)"
            found.breaks.append(broken)
        (consumers.append(found) if found.breaks else unaffected.append(flow.name))
    producer_changes = [c for c in changes if c.breaks_producer]
    producers = sorted({f.source for f in flows}) if producer_changes else []
    paths: list[Path] = []
    for consumer in consumers:
        flow = topology.flows[consumer.flow]
        if flow.map is not None:  # the next system received the map's field names
            fields = sorted({d for b in consumer.breaks for d in b["downstream"]})
        else:
            fields = sorted({b["field"] or EVERYTHING for b in consumer.breaks})
        paths.extend(
            onward(topology, [flow.source, flow.target], [flow.name], fields, precise=True)
        )
    notes = [c for c in changes if not c.sides]
    return Impact(document, consumers, unaffected, producers, producer_changes, paths, notes)


def onward(
    topology: Topology,
    systems: list[str],
    flows: list[str],
    fields: list[str],
    *,
    precise: bool,
) -> list[Path]:
    """Paths from the last system of ``systems`` through flows out of it, depth first."""
    here = systems[-1]
    found: list[Path] = []
    for flow in sorted(topology.flows_from(here), key=lambda f: f.name):
        if flow.target in systems:
            continue  # no cycles
        if flow.derives:
            carried = sorted(
                out
                for out, source in flow.derives.items()
                if any(touches(f, source) or touches(source, f) for f in fields)
                or EVERYTHING in fields
            )
            if not carried:
                continue
            next_fields, next_precise = carried, precise
        else:
            next_fields, next_precise = [EVERYTHING], False
        if flow.map is not None:
            # What the next system receives: the map's fields that read an affected one.
            next_fields = broken_downstream(flow, next_fields, topology)
            if not next_fields:
                continue
        elif (
            flow.reads is not None
            and EVERYTHING not in next_fields
            and not any(touches(f, r) for f in next_fields for r in flow.reads)
        ):
            continue
        path = Path(
            system=flow.target,
            systems=[*systems, flow.target],
            flows=[*flows, flow.name],
            fields=next_fields,
            precise=next_precise,
        )
        found.append(path)
        found.extend(onward(topology, path.systems, path.flows, next_fields, precise=next_precise))
    return found


def actions(impact: Impact) -> dict[str, list[str]]:
    """What each affected system must do, by system, in words for the notification."""
    todo: dict[str, list[str]] = {}
    for consumer in impact.consumers:
        fields = sorted({b["path"] for b in consumer.breaks})
        todo.setdefault(consumer.system, []).append(
            f"flow {consumer.flow}: handle the changed fields {', '.join(fields)} "
            "before documents under the new contract arrive"
        )
    for system in impact.producers:
        todo.setdefault(system, []).append(
            f"send {impact.document} documents that satisfy the new contract "
            "(and re-check any history you re-push)"
        )
    for path in impact.paths:
        todo.setdefault(path.system, []).append(
            f"check what you receive through {' → '.join(path.systems)}"
            + ("" if path.precise else " (a candidate path: no derives declared)")
        )
    return todo
