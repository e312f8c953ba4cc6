"""Scenario coverage: which agreed scenarios traffic exercised, which it never did, and what
the unmapped documents have in common. :func:`build` is pure over counts and payloads; the
store reads are in :mod:`interlink.features.contracts.queries`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interlink.config import Topology
from interlink.scenarios import distinguishing

UNMAPPED_SAMPLE = 10_000


@dataclass(frozen=True)
class Counts:
    by_type: Mapping[tuple[str, str | None], int]  # (type, scenario) → documents
    by_flow: Mapping[tuple[str, str | None], int]  # (flow, scenario) → deliveries
    unmapped: Mapping[str, Sequence[Any]]  # type → payloads of unmapped documents (a sample)


def _value_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def unmapped_groups(scenarios: Sequence[Any], payloads: Iterable[Any]) -> dict[str, Any]:
    """For each field any matcher uses: the distinct values among unmapped documents, counted,
    and the combinations of those values (the rows to take to the downstream team)."""
    per_field: dict[str, Counter[str]] = {}
    combos: Counter[str] = Counter()
    examples: dict[str, dict[str, Any]] = {}
    for payload in payloads:
        values = distinguishing(scenarios, payload)
        for field, value in values.items():
            per_field.setdefault(field, Counter())[_value_key(value)] += 1
        key = json.dumps(values, sort_keys=True, default=str)
        combos[key] += 1
        examples.setdefault(key, values)
    return {
        "fields": {
            field: [{"value": v, "count": n} for v, n in counter.most_common()]
            for field, counter in per_field.items()
        },
        "groups": [{"values": examples[k], "count": n} for k, n in combos.most_common()],
    }


def build(topology: Topology, counts: Counts, flow: str | None = None) -> dict[str, Any]:
    documents: list[dict[str, Any]] = []
    for name, doc in sorted(topology.documents.items()):
        flows = [f for f in topology.flows_for(name) if flow is None or f.name == flow]
        if flow is not None and not flows:
            continue
        names = [s.name for s in doc.scenarios]
        total = sum(n for (t, _), n in counts.by_type.items() if t == name)
        scenarios = [
            {
                "name": s.name,
                "direction": s.direction,
                "likelihood": s.likelihood,
                "documents": counts.by_type.get((name, s.name), 0),
            }
            for s in doc.scenarios
        ]
        unmapped_count = counts.by_type.get((name, None), 0)
        retired = {
            s: n for (t, s), n in counts.by_type.items() if t == name and s and s not in names
        }
        per_flow = []
        for f in flows:
            seen = {s: counts.by_flow.get((f.name, s), 0) for s in names}
            per_flow.append(
                {
                    "flow": f.name,
                    "to": f.target,
                    "require_scenario": f.require_scenario,
                    "scenarios": seen,
                    "unmapped": counts.by_flow.get((f.name, None), 0),
                    "never_seen": [s for s, n in seen.items() if n == 0],
                }
            )
        documents.append(
            {
                "document": name,
                "documents": total,
                "scenarios": scenarios,
                "never_seen": [s["name"] for s in scenarios if s["documents"] == 0],
                "unmapped": {
                    "count": unmapped_count if doc.scenarios else 0,
                    **(
                        unmapped_groups(doc.scenarios, counts.unmapped.get(name, []))
                        if doc.scenarios
                        else {"fields": {}, "groups": []}
                    ),
                },
                "unclassified": unmapped_count if not doc.scenarios else 0,
                "retired_scenarios": retired,
                "flows": per_flow,
            }
        )
    return {"documents": documents}
