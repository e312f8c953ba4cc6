"""Which flows and systems a change touches, why, and whom to tell. Pure functions over a
topology (and, for a proposed schema, the contract check's report).

The change belongs to one system and is weighed by what it names:

- a proposed schema (``--schema``): the contract check's impact (consumers by the fields they
  read, and the systems further down that re-emit them), reused as it is;
- fields (``--field``) or code values (``--code TABLE:VALUE``, the field ``TABLE`` gains or
  changes the value ``VALUE``): the system's outgoing flows that read the field (a flow
  without ``reads`` reads everything; a mapped flow reads what its map's lineage names), then
  everything downstream that carries it on by ``derives``. When ``TABLE`` is one of the
  topology's ``code_tables``, the flows touched are those whose map translates through it;
- nothing named: the topology graph, every flow out of the system and everything downstream
  of them transitively; a release also touches the flows into the system.

Each affected flow carries its reasons; the system told about a flow is the one at its far
end from the changing system (the target, or the source of a flow into a released system).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interlink.config import Contact, Flow, MapField, Topology
from interlink.features.contracts.impact import EVERYTHING, onward, touches
from interlink.scenarios import Ambiguous, classify

KINDS = ("release", "contract", "codes", "scenario", "config")

# Whom each kind of change is for, first choice first. A system with none of these roles
# has all its contacts told: nobody on an affected system goes untold.
ROLES: dict[str, tuple[str, ...]] = {
    "release": ("ops", "dev"),
    "contract": ("dev", "product"),
    "codes": ("product", "business", "dev"),
    "scenario": ("product", "business"),
    "config": ("ops", "dev"),
}


@dataclass
class Affected:
    flow: str
    source: str
    target: str
    system: str  # whose contacts are told
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "from": self.source,
            "to": self.target,
            "system": self.system,
            "reasons": list(self.reasons),
        }


def parse_code(text: str) -> tuple[str, str]:
    """``TABLE:VALUE`` → (field, value); ValueError when either part is missing."""
    table, sep, value = text.partition(":")
    if not sep or not table.strip() or not value.strip():
        raise ValueError(f"--code {text!r} is not TABLE:VALUE (for example kind:refund)")
    return table.strip(), value.strip()


class _Found:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.flows: dict[str, Affected] = {}

    def add(self, flow: Flow, reason: str, system: str | None = None) -> None:
        found = self.flows.get(flow.name)
        if found is None:
            found = Affected(flow.name, flow.source, flow.target, system or flow.target)
            self.flows[flow.name] = found
        if reason not in found.reasons:
            found.reasons.append(reason)

    def downstream(self, flow: Flow, fields: list[str], *, precise: bool) -> None:
        for path in onward(
            self.topology, [flow.source, flow.target], [flow.name], fields, precise=precise
        ):
            last = self.topology.flows[path.flows[-1]]
            carried = ", ".join(path.fields)
            self.add(
                last,
                f"downstream: {' → '.join(path.systems)} carries {carried}"
                + ("" if path.precise else " (a candidate path: no derives declared)"),
            )


def _reader(flow: Flow, name: str) -> str | None:
    """The read field of ``flow`` that field ``name`` touches, ``*`` for a flow reading
    everything, None when it does not read it. A flow with a ``map`` reads what its map's
    lineage names (as the contract impact counts it), not its ``reads``."""
    if flow.map is not None:
        reads: list[str] | None = sorted(
            {s for found in flow.map.lineage().values() for s in found}
        )
    else:
        reads = flow.reads
    if reads is None:
        return EVERYTHING
    return next((r for r in reads if touches(name, r)), None)


def _through_table(fields: Mapping[str, MapField], table: str, prefix: str = "") -> list[str]:
    """The downstream fields of a map whose value goes through code table ``table``."""
    found: list[str] = []
    for name, value in fields.items():
        target = f"{prefix}{name}"
        branches = [b for b in (value.by_scenario or {}).values() if b is not None]
        if value.code == table or any(b.code == table for b in branches):
            found.append(target)
        found += _through_table(value.fields or {}, table, target + ".")
        for branch in branches:
            found += _through_table(branch.fields or {}, table, target + ".")
    return list(dict.fromkeys(found))


def _table_reason(topology: Topology, table: str, value: str, through: list[str]) -> str:
    """Why a new or changed value of code table ``table`` touches a flow whose map translates
    the fields ``through`` with it, and what the value becomes."""
    entry = topology.code_tables[table].get(value)
    becomes = (
        f"{value} is sent as {entry!r}"
        if entry is not None
        else f"{value} has no entry yet: such deliveries fail until code_tables.{table} has one"
    )
    return f"code {table}:{value}: its map translates {', '.join(through)} through it; {becomes}"


def _code_note(topology: Topology, flow: Flow, table: str, value: str) -> str:
    doc = topology.documents.get(flow.document)
    scenarios = doc.scenarios if doc is not None else []
    if not any(table in s.when for s in scenarios):
        return ""
    try:
        scenario = classify(scenarios, {table: value})
    except Ambiguous as e:
        return f"; {table}={value} matches several scenarios ({', '.join(e.names)})"
    if scenario is not None:
        return f"; {flow.document} with {table}={value} is the {scenario} scenario"
    return f"; no agreed scenario of {flow.document} takes {table}={value} yet"


def assess(
    topology: Topology,
    system: str,
    kind: str,
    *,
    fields: Sequence[str] = (),
    codes: Sequence[tuple[str, str]] = (),
    contract: Mapping[str, Any] | None = None,
) -> list[Affected]:
    """The flows ``kind`` of change on ``system`` touches, each with its reasons."""
    found = _Found(topology)
    outgoing = sorted(topology.flows_from(system), key=lambda f: f.name)
    if contract is not None:
        for consumer in contract.get("consumers", []):
            flow = topology.flows[consumer["flow"]]
            for broken in consumer.get("breaks", []):
                read = broken.get("read") or EVERYTHING
                where = "every field" if read == EVERYTHING else f"`{read}`"
                found.add(flow, f"contract: {broken['message']} (it reads {where})")
        for path in contract.get("transitive", []):
            last = topology.flows[path["flows"][-1]]
            found.add(
                last,
                f"contract, downstream: {path['text']} carries {', '.join(path['fields'])}"
                + ("" if path["precise"] else " (a candidate path: no derives declared)"),
            )
    for name in fields:
        for flow in outgoing:
            read = _reader(flow, name)
            if read is None:
                continue
            how = "reads every field (no reads declared)" if read == EVERYTHING else "reads"
            found.add(flow, f"field `{name}`: {how}" + ("" if read == EVERYTHING else f" `{read}`"))
            found.downstream(flow, [name], precise=True)
    for table, value in codes:
        if table in topology.code_tables:  # a code table of the flows' maps, not a field
            for flow in outgoing:
                through = _through_table(flow.map.fields, table) if flow.map else []
                if through:
                    found.add(flow, _table_reason(topology, table, value, through))
                    found.downstream(flow, through, precise=True)
            continue
        for flow in outgoing:
            read = _reader(flow, table)
            if read is None:
                continue
            how = "reads every field" if read == EVERYTHING else f"reads `{read}`"
            note = _code_note(topology, flow, table, value)
            found.add(flow, f"code {table}:{value}: {how}{note}")
            found.downstream(flow, [table], precise=True)
    if contract is None and not fields and not codes:
        for flow in outgoing:
            found.add(flow, f"carries {flow.document} from {system}")
            found.downstream(flow, [EVERYTHING], precise=True)
        if kind == "release":
            for flow in sorted(topology.flows_to(system), key=lambda f: f.name):
                found.add(flow, f"delivers to {system}, which ships this release", flow.source)
    return list(found.flows.values())


def systems_of(affected: Iterable[Affected], announcer: str) -> list[str]:
    """The systems to tell, in order of first appearance, never the announcing one."""
    return list(dict.fromkeys(a.system for a in affected if a.system != announcer))


def recipients(topology: Topology, system: str, kind: str) -> list[Contact]:
    """The contacts of ``system`` a ``kind`` of change is for (see :data:`ROLES`)."""
    found = topology.systems.get(system)
    if found is None:
        return []
    chosen = found.contacts_with(*ROLES.get(kind, ()))
    return chosen or list(found.contacts)
