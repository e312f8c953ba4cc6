"""Contracts: what validation and classification cost intake, and how long a check takes.

    python bench/contracts.py [--documents 20000] [--batch 500] [--runs 3]

1. Intake throughput in-process (``hub.intake.submit`` in batches), on embedded SQLite, with
   the example's payment-order contract and scenarios against the same topology without them.
   Target: validation and classification cost at most 15% of throughput.
2. ``contract check`` on a generated schema of 500 properties 5 levels deep, against a network
   of 50 flows, with the replay of 1,000 stored documents. Target: under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interlink.features.contracts.service import contracts
from interlink.config import load
from interlink.features.contracts.diff import compare
from interlink.features.contracts.impact import assess
from interlink.example import EXAMPLE_CONTRACTS
from interlink.intake import Item
from interlink.service import Hub
from interlink.features.registry import FEATURES

INTAKE = """\
timezone: UTC
database: sqlite:///bench.db
systems:
  trading: {{}}
  treasury: {{url: "http://127.0.0.1:9"}}
  finance: {{url: "http://127.0.0.1:9"}}
documents:
  payment_order:
    key: order_no
{extra}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order, ordered: true}}
  trading-finance: {{from: trading, to: finance, document: payment_order}}
"""
CONTRACTED = """\
    contract: payment_order.json
    scenarios:
      - {name: payment, direction: forward, likelihood: high, when: {kind: pay}}
      - {name: refund, direction: reverse, likelihood: low, when: {kind: refund, amount: {lt: 0}}}
"""


def order(i: int, run: int) -> dict[str, Any]:
    refund = i % 10 == 0
    return {
        "order_no": f"R{run}-{i:07d}",
        "kind": "refund" if refund else "pay",
        "amount": f"{'-' if refund else ''}{i % 997}.{i % 100:02d}",
        "currency": "CNY",
        "payee_account": f"6222{i:012d}",
        "pay_before": "2026-12-01T17:00:00+08:00",
    }


async def intake_rate(with_contract: bool, total: int, batch: int, run: int) -> tuple[float, float]:
    """(documents per wall-clock second, per CPU second of this process)."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "payment_order.json").write_text(EXAMPLE_CONTRACTS["contracts/payment_order.json"])
        text = INTAKE.format(extra=CONTRACTED if with_contract else "")
        (base / "interlink.yaml").write_text(text)
        hub = Hub(load(base / "interlink.yaml"), features=FEATURES)
        try:
            source = hub.topology.systems["trading"]
            items = [Item("payment_order", order(i, run)) for i in range(total)]
            started, cpu = time.perf_counter(), time.process_time()
            for start in range(0, total, batch):
                results = await hub.intake.submit(source, items[start : start + batch])
                assert all(isinstance(r, dict) for r in results), results[:1]
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            await hub.close()
    return total / elapsed, total / cpu


# -- the check benchmark ----------------------------------------------------------------------


def tree(depth: int, budget: list[int], rng: random.Random) -> dict[str, Any]:
    """An object schema: 3 leaves and 3 nested objects per level, 5 levels, until budget."""
    props: dict[str, Any] = {}
    for i in range(3):
        if budget[0] <= 0:
            break
        budget[0] -= 1
        kind = rng.choice(["string", "integer", "enum"])
        if kind == "enum":
            props[f"f{depth}_{i}"] = {"type": "string", "enum": ["a", "b", "c"]}
        elif kind == "string":
            props[f"f{depth}_{i}"] = {"type": "string", "maxLength": 40}
        else:
            props[f"f{depth}_{i}"] = {"type": "integer", "minimum": 0}
    if depth < 5:
        for i in range(3):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            props[f"o{depth}_{i}"] = tree(depth + 1, budget, rng)
    return {"type": "object", "properties": props, "required": list(props)[:2]}


def count(schema: dict[str, Any]) -> tuple[int, int]:
    """(properties, deepest level)."""
    total, deepest = 0, 0
    for sub in schema.get("properties", {}).values():
        total += 1
        if sub.get("type") == "object":
            n, d = count(sub)
            total, deepest = total + n, max(deepest, d)
    return total, deepest + 1


def leaves(schema: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for name, sub in schema.get("properties", {}).items():
        field = f"{prefix}.{name}" if prefix else name
        out.append(field)
        if sub.get("type") == "object":
            out.extend(leaves(sub, field))
    return out


def sample(schema: dict[str, Any], i: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object":
            out[name] = sample(sub, i)
        elif "enum" in sub:
            out[name] = "abc"[i % 3]
        elif sub["type"] == "string":
            out[name] = f"v{i}"
        else:
            out[name] = i
    return out


def mutate(schema: dict[str, Any], rng: random.Random, changes: int) -> dict[str, Any]:
    proposed = json.loads(json.dumps(schema))
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        for sub in node.get("properties", {}).values():
            nodes.append(sub)
            if sub.get("type") == "object":
                walk(sub)

    walk(proposed)
    proposed["properties"]["added"] = {"type": "string"}  # required: history would break
    proposed["required"].append("added")
    for sub in rng.sample(nodes, changes):
        if "enum" in sub:
            sub["enum"].append("d")
        elif sub.get("type") == "string":
            sub["maxLength"] = 20
        elif sub.get("type") == "integer":
            sub["type"] = "number"
        else:
            sub["additionalProperties"] = False
    return proposed


def network(base: Path, schema: dict[str, Any], rng: random.Random) -> Path:
    fields = leaves(schema)
    systems = ["trading"] + [f"c{i}" for i in range(30)] + [f"d{i}" for i in range(20)]
    lines = ["timezone: UTC", "database: sqlite:///bench.db", "systems:", "  trading: {}"]
    lines += [f'  {s}: {{url: "http://127.0.0.1:9"}}' for s in systems[1:]]
    lines += [
        "documents:",
        "  order: {key: f1_0, contract: order.json}",
        "  derived: {key: id}",
        "flows:",
    ]
    for i in range(30):  # 30 consumers of the order, most reading a few fields
        reads = rng.sample(fields, 8) if i % 5 else None
        spec = f"from: trading, to: c{i}, document: order"
        if reads:
            spec += f", reads: [{', '.join(reads)}]"
        lines.append(f"  trading-c{i}: {{{spec}}}")
    for i in range(20):  # 20 onward flows, half with derives
        spec = f"from: c{i}, to: d{i}, document: derived"
        if i % 2:
            spec += f", derives: {{id: {rng.choice(fields)}}}"
        lines.append(f"  c{i}-d{i}: {{{spec}}}")
    (base / "order.json").write_text(json.dumps(schema))
    (base / "interlink.yaml").write_text("\n".join(lines) + "\n")
    return base / "interlink.yaml"


async def check_time(runs: int) -> dict[str, Any]:
    rng = random.Random(7)
    schema = tree(1, [500], rng)
    schema["properties"]["f1_0"] = {"type": "string", "maxLength": 40}  # the key
    extra = 500 - count(schema)[0]
    for i in range(extra):  # top up to exactly 500 with leaves at the root
        schema["properties"][f"x{i}"] = {"type": "string", "pattern": "^[a-z0-9]+$"}
    properties, depth = count(schema)
    proposed = mutate(schema, rng, 25)
    with tempfile.TemporaryDirectory() as folder:
        hub = Hub(load(network(Path(folder), schema, rng)), features=FEATURES)
        try:
            source = hub.topology.systems["trading"]
            for start in range(0, 1000, 500):
                items = [Item("order", sample(schema, i)) for i in range(start, start + 500)]
                items = [
                    Item("order", {**it.payload, "f1_0": f"k{n + start}"})
                    for n, it in enumerate(items)
                ]
                results = await hub.intake.submit(source, items)
                assert all(isinstance(r, dict) for r in results), results[:1]
            flows = len(hub.topology.flows)
            pure, full = [], []
            report: dict[str, Any] = {}
            for _ in range(runs):
                started = time.perf_counter()
                assess(hub.topology, "order", compare(schema, proposed))
                pure.append(time.perf_counter() - started)
                started = time.perf_counter()
                report = contracts(hub).check("order", proposed, replay=1000)
                full.append(time.perf_counter() - started)
        finally:
            await hub.close()
    return {
        "properties": properties,
        "depth": depth,
        "flows": flows,
        "changes": len(report["changes"]),
        "consumers broken": len(report["consumers"]),
        "transitive paths": len(report["transitive"]),
        "replayed": report["replay"]["checked"],
        "refused": report["replay"]["refused"],
        "compare+impact ms": round(statistics.median(pure) * 1000, 1),
        "check with replay ms": round(statistics.median(full) * 1000, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    plain: list[tuple[float, float]] = []
    checked: list[tuple[float, float]] = []
    for run in range(args.runs):  # alternate the order, so that machine noise hits both alike
        first, second = (False, True) if run % 2 == 0 else (True, False)
        for with_contract in (first, second):
            rate = await intake_rate(with_contract, args.documents, args.batch, run)
            (checked if with_contract else plain).append(rate)
    print(f"intake, {args.documents} documents in batches of {args.batch}, {args.runs} runs")
    for label, index in (("wall clock", 0), ("process CPU", 1)):
        best_plain = max(r[index] for r in plain)
        best_checked = max(r[index] for r in checked)
        print(
            f"  {label:>11}: without {best_plain:7.0f} docs/s, with contract + scenarios "
            f"{best_checked:7.0f} docs/s: cost {100 * (1 - best_checked / best_plain):.1f}%"
        )
    print("  (target: at most 15%; best of the runs for each)")
    figures = await check_time(args.runs)
    print("contract check on a generated schema (target under 1000 ms):")
    for name, value in figures.items():
        print(f"  {name}: {value}")


if __name__ == "__main__":
    asyncio.run(main())
