"""Whether a rehearsal met its drill's expectations: pure functions over what was recorded.

Each check returns a :class:`Check`: passed, failed or not available (what it needs is not
installed), with the evidence in words. :func:`evaluate` runs every check a drill asks for,
and always "nothing lost": every delivery ended delivered or dead (or held, where the drill
expects it held for that reason), and every delivery the hub counts as delivered is in its
sandbox's books.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interlink.features.drills.sandbox import Received
from interlink.features.drills.spec import DeadExpectation, Drill

PASSED = "passed"
FAILED = "failed"
NOT_AVAILABLE = "not available"
EXAMPLES = 5


@dataclass
class Check:
    name: str
    status: str
    evidence: str
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "evidence": self.evidence,
            "details": self.details,
        }


@dataclass(frozen=True)
class FlowPath:
    """Where a flow's deliveries arrive at its sandbox."""

    name: str
    system: str
    path: str


def _some(items: Sequence[str]) -> str:
    shown = ", ".join(items[:EXAMPLES])
    return shown + (f" and {len(items) - EXAMPLES} more" if len(items) > EXAMPLES else "")


def expected_dead(drill: Drill, delivery: dict[str, Any]) -> bool:
    return any(d.covers(delivery) for d in drill.expect.dead)


def expected_held(drill: Drill, delivery: dict[str, Any]) -> bool:
    return any(h.covers(delivery) for h in drill.expect.held)


def held_as_expected(drill: Drill, delivery: dict[str, Any]) -> bool:
    """``delivery`` is held for the reason the drill expects it held: it ended as meant."""
    return delivery["status"] == "held" and any(
        h.covers(delivery) and h.reason == delivery["reason"] for h in drill.expect.held
    )


def nothing_lost(
    deliveries: Sequence[dict[str, Any]],
    received: Sequence[Received],
    settled: bool,
    drill: Drill | None = None,
) -> Check:
    booked = {(r.system, r.document_id) for r in received if r.booked}
    kept = [d for d in deliveries if drill is not None and held_as_expected(drill, d)]
    open_ = [
        f"{d['flow']} {d['key']} r{d['revision']} ({d['status']}"
        + (f": {d['reason']})" if d["reason"] else ")")
        for d in deliveries
        if d["status"] not in ("delivered", "dead") and d not in kept
    ]
    unbooked = [
        f"{d['flow']} {d['key']} r{d['revision']}"
        for d in deliveries
        if d["status"] == "delivered" and (d["system"], d["document_id"]) not in booked
    ]
    ended = len(deliveries) - len(open_) - len(kept)
    evidence = f"{ended} of {len(deliveries)} deliveries ended delivered or dead"
    if kept:
        evidence += f", {len(kept)} held as expected"
    if unbooked:
        evidence += f"; {len(unbooked)} counted delivered but not in the sandbox's books"
    if not settled and open_:
        evidence += " (the drill hit its time limit)"
    ok = not open_ and not unbooked and bool(deliveries)
    if not deliveries:
        evidence = "no document was accepted, so nothing was delivered"
    details = [f"still open: {_some(open_)}"] if open_ else []
    if unbooked:
        details.append(f"not booked: {_some(unbooked)}")
    return Check("nothing lost", PASSED if ok else FAILED, evidence, details)


def delivered_within(drill: Drill, deliveries: Sequence[dict[str, Any]], limit: float) -> Check:
    name = f"everything delivered within {limit:g}s"
    wanted = [d for d in deliveries if not expected_dead(drill, d) and not expected_held(drill, d)]
    missing = [
        f"{d['flow']} {d['key']} r{d['revision']} ({d['status']}"
        + (f": {d['reason']}" if d["reason"] else "")
        + ")"
        + (f" {d['last_error']}" if d.get("last_error") else "")
        for d in wanted
        if d["status"] != "delivered"
    ]
    late = [
        f"{d['flow']} {d['key']} r{d['revision']} after {d['latency']:.1f}s"
        for d in wanted
        if d["status"] == "delivered" and d["latency"] is not None and d["latency"] > limit
    ]
    latencies = [d["latency"] for d in wanted if d["latency"] is not None]
    slowest = max(latencies, default=0.0)
    delivered = len(wanted) - len(missing)
    evidence = (
        f"{delivered} of {len(wanted)} delivered; the slowest {slowest:.1f}s after submission"
    )
    details = []
    if missing:
        details.append(f"not delivered: {_some(missing)}")
    if late:
        details.append(f"later than {limit:g}s: {_some(late)}")
    ok = bool(wanted) and not missing and not late
    return Check(name, PASSED if ok else FAILED, evidence, details)


def duplicates(received: Sequence[Received], allowed: int) -> Check:
    first: dict[tuple[str, str], float] = {}
    dups: list[str] = []
    for r in received:
        if not r.booked:
            continue
        ident = (r.system, r.document_id)
        if ident in first:
            dups.append(
                f"{r.system} {r.key} r{r.revision} at {r.at:.1f}s "
                f"(first booked at {first[ident]:.1f}s)"
            )
        else:
            first[ident] = r.at
    evidence = f"{len(dups)} duplicate bookings at the sandboxes (allowed: {allowed})"
    details = [f"duplicates: {_some(dups)}"] if dups else []
    name = "no duplicates" if allowed == 0 else f"at most {allowed} duplicates"
    return Check(name, PASSED if len(dups) <= allowed else FAILED, evidence, details)


def alerts_fired(drill: Drill, events: Sequence[dict[str, Any]]) -> list[Check]:
    checks = []
    for want in drill.expect.alerts:
        found = [
            e
            for e in events
            if e["kind"] == want.kind
            and (want.system is None or e["system"] == want.system)
            and (want.flow is None or e["flow"] == want.flow)
        ]
        if found:
            first = found[0]
            evidence = f"{len(found)} fired; the first at {first['t']:.1f}s"
        else:
            kinds = sorted({e["kind"] for e in events})
            evidence = "never fired; events seen: " + (", ".join(kinds) or "none")
        checks.append(Check(f"alert {want.label()} fired", PASSED if found else FAILED, evidence))
    return checks


def dead_as_expected(drill: Drill, deliveries: Sequence[dict[str, Any]]) -> list[Check]:
    return _ended_as(drill.expect.dead, "dead", deliveries)


def held_as_expected_checks(drill: Drill, deliveries: Sequence[dict[str, Any]]) -> list[Check]:
    return _ended_as(drill.expect.held, "held", deliveries)


def _ended_as(
    wanted: Sequence[DeadExpectation], status: str, deliveries: Sequence[dict[str, Any]]
) -> list[Check]:
    """Every delivery each expectation covers ended with ``status`` and its reason."""
    checks = []
    for want in wanted:
        mine = [d for d in deliveries if want.covers(d)]
        revision = f" r{want.revision}" if want.revision is not None else ""
        name = f"{want.key}{revision} {status} ({want.reason})" + (
            f" on {want.flow}" if want.flow else ""
        )
        if not mine:
            checks.append(Check(name, FAILED, f"no delivery of key {want.key}{revision} was made"))
            continue
        wrong = [d for d in mine if not (d["status"] == status and d["reason"] == want.reason)]
        states = ", ".join(
            f"{d['flow']} r{d['revision']}: {d['status']}"
            + (f" ({d['reason']})" if d["reason"] else "")
            + (f" — {d['last_error']}" if d.get("last_error") else "")
            for d in mine
        )
        checks.append(Check(name, FAILED if wrong else PASSED, states))
    return checks


def order_kept(flows: Sequence[FlowPath], received: Sequence[Received]) -> Check:
    """Per flow and key, the revisions a sandbox booked (first booking of each document)
    never go backwards. Passing needs at least one key with two revisions booked."""
    where = {(f.system, f.path): f.name for f in flows}
    seen: set[tuple[str, str]] = set()
    highest: dict[tuple[str, str], int] = {}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    broken: list[str] = []
    for r in received:
        flow = where.get((r.system, r.path))
        if flow is None or not r.booked or (r.system, r.document_id) in seen:
            continue
        seen.add((r.system, r.document_id))
        ident = (flow, r.key)
        counts[ident] += 1
        top = highest.get(ident, 0)
        if r.revision < top:
            broken.append(f"{flow} {r.key}: r{r.revision} after r{top} at {r.at:.1f}s")
        highest[ident] = max(top, r.revision)
    shown = sum(1 for n in counts.values() if n > 1)
    name = "order kept per key"
    if broken:
        return Check(
            name,
            FAILED,
            f"{len(broken)} revisions booked after a later one",
            [f"out of order: {_some(broken)}"],
        )
    if shown == 0:
        return Check(name, FAILED, "no key had two revisions booked: nothing shows the order")
    return Check(name, PASSED, f"{shown} keys had several revisions, all booked in order")


def evaluate(
    drill: Drill,
    *,
    deliveries: Sequence[dict[str, Any]],
    received: Sequence[Received],
    events: Sequence[dict[str, Any]],
    flows: Sequence[FlowPath],
    settled: bool,
    maintenance: Check | None = None,
) -> list[Check]:
    expect = drill.expect
    checks = [nothing_lost(deliveries, received, settled, drill)]
    if expect.delivered_within is not None:
        checks.append(delivered_within(drill, deliveries, expect.delivered_within.total_seconds()))
    if expect.max_duplicates is not None:
        checks.append(duplicates(received, expect.max_duplicates))
    checks.extend(alerts_fired(drill, events))
    checks.extend(dead_as_expected(drill, deliveries))
    checks.extend(held_as_expected_checks(drill, deliveries))
    if expect.order_kept:
        names = expect.order_kept if isinstance(expect.order_kept, list) else None
        chosen = [f for f in flows if names is None or f.name in names]
        checks.append(order_kept(chosen, received))
    if maintenance is not None:
        checks.append(maintenance)
    return checks


def coverage(
    catalogue: dict[str, list[str]],
    flows: dict[str, str],
    drill: Drill,
    deliveries: Sequence[dict[str, Any]],
) -> dict[str, dict[str, str]]:
    """scenario → flow → "passed" | "exercised" | "never tried" | "" (the flow does not carry
    that scenario's document type). ``catalogue``: document type → its scenario names;
    ``flows``: flow → document type. Passed: every delivery of that scenario on that flow
    ended as the drill expects (delivered, or dead or held where the drill says so)."""
    matrix: dict[str, dict[str, str]] = {}
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for d in deliveries:
        by_cell[(d["scenario"] or "(no scenario)", d["flow"])].append(d)
    rows = [(doc_type, s) for doc_type, names in catalogue.items() for s in names]
    if any(scenario == "(no scenario)" for scenario, _ in by_cell):
        rows.append(("", "(no scenario)"))
    for doc_type, scenario in rows:
        row = matrix.setdefault(scenario, {})
        for flow, flow_type in flows.items():
            if doc_type and flow_type != doc_type:
                row.setdefault(flow, "")
                continue
            cell = by_cell.get((scenario, flow), [])
            if not cell:
                row[flow] = "never tried" if doc_type else ""
                continue
            ok = all(
                d["status"] == "delivered"
                or (d["status"] == "dead" and expected_dead(drill, d))
                or held_as_expected(drill, d)
                for d in cell
            )
            row[flow] = "passed" if ok else "exercised"
    return matrix


def outbox_taken(
    drill: Drill,
    source: str,
    rows: Sequence[tuple[int, str]],
    documents: Sequence[dict[str, Any]],
    refused: Sequence[str],
    deliveries: Sequence[dict[str, Any]],
    received: Sequence[Received],
) -> Check:
    """Every outbox row the drill wrote became exactly one document, and each of that
    document's deliveries was booked exactly once by its sandbox: rows = documents = bookings.
    ``rows``: (row id, origin); ``refused``: the row references intake refused."""
    name = f"every row of the {source} outbox taken once and delivered once"
    prefix = f"key:{source}#"
    by_row: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in documents:
        if str(doc["identity"]).startswith(prefix):
            by_row[str(doc["identity"])[len(prefix) :].split("@", 1)[0]].append(doc)
    refused_set = set(refused)
    missing = [
        f"row {row_id} ({origin})"
        for row_id, origin in rows
        if str(row_id) not in by_row and str(row_id) not in refused_set
    ]
    twice = [
        f"row {row_id}: {len(by_row[str(row_id)])} documents"
        for row_id, _ in rows
        if len(by_row.get(str(row_id), [])) > 1
    ]
    ours = {doc["id"] for docs in by_row.values() for doc in docs}
    booked: dict[tuple[str, str], int] = defaultdict(int)
    for r in received:
        if r.booked:
            booked[(r.system, r.document_id)] += 1
    counted: dict[str, int] = defaultdict(int)
    wrong: list[str] = []
    for d in deliveries:
        if d["document_id"] not in ours or expected_dead(drill, d) or expected_held(drill, d):
            continue
        times = booked.get((d["system"], d["document_id"]), 0)
        if times == 1:
            counted[d["flow"]] += 1
        else:
            wrong.append(f"{d['flow']} {d['key']} r{d['revision']}: booked {times} times")
    flows = ", ".join(f"{n} on {f}" for f, n in sorted(counted.items())) or "none booked"
    evidence = f"{len(rows)} rows → {len(ours)} documents → {flows}"
    if refused:
        evidence += f"; {len(refused)} rows refused at intake"
    details = []
    if missing:
        details.append(f"rows that became no document: {_some(missing)}")
    if twice:
        details.append(f"rows taken twice: {_some(twice)}")
    if refused:
        details.append(f"refused rows: {_some([f'row {r}' for r in refused])}")
    if wrong:
        details.append(f"not booked exactly once: {_some(wrong)}")
    ok = bool(rows) and not missing and not twice and not refused and not wrong
    return Check(name, PASSED if ok else FAILED, evidence, details)


@dataclass(frozen=True)
class Unmappable:
    """The map could not map a document: why."""

    reason: str


def mapped_bodies(
    drill: Drill,
    flows: Sequence[FlowPath],
    received: Sequence[Received],
    expected: dict[tuple[str, str], Any],
    deliveries: Sequence[dict[str, Any]],
) -> Check:
    """Every body the sandboxes booked on a mapped flow is exactly what the flow's map makes
    of its document. ``expected``: (flow, document id) → the mapped body, or Unmappable."""
    where = {(f.system, f.path): f.name for f in flows}
    names = ", ".join(f.name for f in flows)
    checked = 0
    wrong: list[str] = []
    for r in received:
        flow = where.get((r.system, r.path))
        if flow is None or not r.booked:
            continue
        want = expected.get((flow, r.document_id))
        checked += 1
        if isinstance(want, Unmappable) or want is None:
            wrong.append(f"{flow} {r.key} r{r.revision}: booked, but its map fails")
        elif r.payload != want:
            wrong.append(f"{flow} {r.key} r{r.revision}: {_difference(want, r.payload)}")
    mapped_flows = {f.name for f in flows}
    unmapped = [
        f"{d['flow']} {d['key']} r{d['revision']}: {d.get('last_error') or d['reason']}"
        for d in deliveries
        if d["flow"] in mapped_flows
        and d["status"] == "dead"
        and d["reason"] == "local_error"
        and not expected_dead(drill, d)
    ]
    name = f"bodies in the downstream's shape ({names})"
    evidence = f"{checked - len(wrong)} of {checked} booked bodies are the map's output"
    details = []
    if wrong:
        details.append(f"not the map's output: {_some(wrong)}")
    if unmapped:
        evidence += f"; {len(unmapped)} documents could not be mapped"
        details.append(f"could not be mapped: {_some(unmapped)}")
    if checked == 0:
        evidence = "no body was booked on a mapped flow: nothing shows the map"
    ok = checked > 0 and not wrong and not unmapped
    return Check(name, PASSED if ok else FAILED, evidence, details)


def _difference(want: Any, got: Any, path: str = "$") -> str:
    """Where ``got`` first differs from ``want``, in words."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in list(want) + [k for k in got if k not in want]:
            if key not in got:
                return f"{path}.{key} missing"
            if key not in want:
                return f"{path}.{key} not in the map's output"
            if want[key] != got[key]:
                return _difference(want[key], got[key], f"{path}.{key}")
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            if a != b:
                return _difference(a, b, f"{path}[{i}]")
    return (
        f"{path} is {json.dumps(got, ensure_ascii=False)[:80]}, the map makes "
        + json.dumps(want, ensure_ascii=False)[:80]
    )
