"""What mapping a payment order to the treasury's shape costs, by expression library.

    python bench/mapping.py [--documents 5000] [--runs 5] [--engine 4000]

1. µs per document, JSON bytes in to JSON bytes out, for the same map (ten fields: renamed,
   nested, an array of lines, a code table, amounts in fen, a date as yyyyMMdd in the
   treasury's zone) written in each library: Interlink's map (JMESPath paths, plain dotted
   paths read directly), the same map with every path on JMESPath, one JSONata expression
   (jsonata-python) and one jq program (jq's C library through its Python binding). The
   JSONata and jq versions compute fen in floating point and cannot convert zones: they do
   less than the map, and still cost more.
2. With ``--engine N``: N documents delivered by an in-process engine on SQLite to a transport
   that answers 200 at once, with and without the map on the flow; this process's CPU per
   delivery, so the map's share of a delivery's CPU. Best of ``--runs`` rounds, alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jmespath
import jq
import jsonata
import orjson

from interlink.config import load
from interlink.features.mapping import maps
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.service import Hub
from interlink.transports.base import Request, Response

CONTRACT = {
    "type": "object",
    "required": ["order_no", "amount", "kind"],
    "properties": {
        "order_no": {"type": "string"},
        "amount": {"type": "string"},
        "currency": {"type": "string"},
        "kind": {"type": "string", "enum": ["pay", "refund"]},
        "pay_before": {"type": "string"},
        "memo": {"type": "string"},
        "payee": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "account": {"type": "string"}},
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"no": {"type": "integer"}, "amount": {"type": "string"}},
            },
        },
    },
}

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///{db}
code_tables:
  payment_kind: {{pay: "01", refund: "02"}}
systems:
  trading: {{token_env: BENCH_TOKEN}}
  treasury: {{url: "http://127.0.0.1:9"}}
documents:
  payment_order:
    key: order_no
    contract: contract.json
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, likelihood: low, when: {{kind: refund}}}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
{map}
"""

MAP = """\
    map:
      fields:
        付款单号: order_no
        金额: {path: amount, format: fen}
        币种: currency
        付款类型: {path: kind, code: payment_kind}
        日期: {path: pay_before, format: yyyyMMdd}
        摘要: memo
        收款方:
          fields:
            户名: payee.name
            账号: payee.account
        明细:
          each: lines
          fields:
            行号: "no"
            金额: {path: amount, format: fen}
        来源: {const: trading}
"""

JSONATA = """{
  "付款单号": order_no,
  "金额": $round($number(amount) * 100),
  "币种": currency,
  "付款类型": {"pay": "01", "refund": "02"}.$lookup($, $$.kind),
  "日期": $substring($replace(pay_before, "-", ""), 0, 8),
  "摘要": memo,
  "收款方": {"户名": payee.name, "账号": payee.account},
  "明细": [lines.{"行号": no, "金额": $round($number(amount) * 100)}],
  "来源": "trading"
}"""

JQ = """{
  "付款单号": .order_no,
  "金额": ((.amount | tonumber) * 100 | round),
  "币种": .currency,
  "付款类型": ({"pay": "01", "refund": "02"}[.kind] // error("no code")),
  "日期": (.pay_before[0:10] | gsub("-"; "")),
  "摘要": .memo,
  "收款方": {"户名": .payee.name, "账号": .payee.account},
  "明细": [.lines[] | {"行号": .no, "金额": ((.amount | tonumber) * 100 | round)}],
  "来源": "trading"
}"""


def document(i: int, rng: random.Random) -> dict[str, object]:
    fen = [rng.randint(1, 999_999) for _ in range(rng.randint(1, 4))]
    lines = [{"no": n + 1, "amount": f"{f // 100}.{f % 100:02d}"} for n, f in enumerate(fen)]
    return {
        "order_no": f"P-{i:08d}",
        "amount": f"{sum(fen) // 100}.{sum(fen) % 100:02d}",
        "currency": "CNY",
        "kind": rng.choice(["pay", "pay", "pay", "refund"]),
        "pay_before": f"2026-12-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:30:00+08:00",
        "memo": "货款 goods",
        "payee": {"name": "上海某某有限公司", "account": f"6222{i:012d}"},
        "lines": lines,
    }


def write_topology(directory: Path, with_map: bool) -> Path:
    (directory / "contract.json").write_text(json.dumps(CONTRACT), encoding="utf-8")
    path = directory / "interlink.yaml"
    text = TOPOLOGY.format(db=directory / "bench.db", map=MAP if with_map else "")
    path.write_text(text, encoding="utf-8")
    return path


def per_document(label: str, fn: Callable[[bytes], bytes], bodies: list[bytes], runs: int) -> float:
    for body in bodies[:200]:
        fn(body)  # warm up
    rounds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for body in bodies:
            fn(body)
        rounds.append((time.perf_counter() - t0) / len(bodies) * 1e6)
    best, median = min(rounds), statistics.median(rounds)
    print(f"  {label:<44} {best:7.1f} µs/doc (median {median:.1f})")
    return best


def libraries(documents: int, runs: int) -> None:
    rng = random.Random(15)
    bodies = [orjson.dumps(document(i, rng)) for i in range(documents)]
    with tempfile.TemporaryDirectory() as tmp:
        topo = load(write_topology(Path(tmp), with_map=True))
        flow = topo.flows["trading-treasury"]
        ours = maps.compile_map(topo, flow)
        dotted, name = maps._DOTTED, maps._NAME
        maps._DOTTED = maps._NAME = re.compile(r"(?!)")  # every path on JMESPath
        try:
            all_jmespath = maps.compile_map(topo, flow)
        finally:
            maps._DOTTED, maps._NAME = dotted, name
    assert ours.body(bodies[0]) == all_jmespath.body(bodies[0])
    selection = jmespath.compile(
        "{order_no: order_no, amount: amount, currency: currency, kind: kind, "
        "pay_before: pay_before, memo: memo, payee: {name: payee.name, account: payee.account}, "
        "lines: lines[].{no: no, amount: amount}}"
    )
    expression = jsonata.Jsonata(JSONATA)
    program = jq.compile(JQ)

    print(f"mapping one payment order ({documents:,} documents, best of {runs} rounds):")
    per_document(
        "parse and write JSON only (orjson)", lambda b: orjson.dumps(orjson.loads(b)), bodies, runs
    )
    per_document("Interlink map (JMESPath, dotted paths direct)", ours.body, bodies, runs)
    per_document("Interlink map, every path on JMESPath", all_jmespath.body, bodies, runs)
    per_document(
        "one JMESPath expression (selection only)",
        lambda b: orjson.dumps(selection.search(orjson.loads(b))),
        bodies,
        runs,
    )
    per_document(
        "JSONata (jsonata-python), float fen",
        lambda b: orjson.dumps(expression.evaluate(orjson.loads(b))),
        bodies[: max(documents // 10, 200)],
        runs,
    )
    per_document(
        "jq (C library), float fen",
        lambda b: orjson.dumps(program.input_text(b.decode()).first()),
        bodies,
        runs,
    )


class Answer200:
    async def send(self, request: Request) -> Response:
        return Response(status=200, headers={}, body=b"", elapsed_ms=0.0)

    async def close(self) -> None:
        return None


async def deliver(count: int, with_map: bool) -> tuple[float, float]:
    """CPU µs of this process per delivery for ``count`` documents, and µs inside the map."""
    import os

    os.environ["BENCH_TOKEN"] = "bench-token"
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        topo = load(write_topology(Path(tmp), with_map))
        hub = Hub(topo, transport=Answer200(), features=FEATURES)
        in_map = [0.0]
        if with_map:
            body_map = hub.hooks.body_maps["trading-treasury"]

            def timed(body: bytes) -> bytes:
                t = time.perf_counter()
                try:
                    return body_map(body)
                finally:
                    in_map[0] += time.perf_counter() - t

            hub.hooks.body_maps["trading-treasury"] = timed
        try:
            source = topo.systems["trading"]
            items = [Item("payment_order", document(i, rng)) for i in range(count)]
            for start in range(0, count, 500):
                hub.intake.submit_sync(source, items[start : start + 500])
            engine = hub.engine
            t0 = time.process_time()
            await engine.drain(max_steps=100_000)
            cpu = time.process_time() - t0
        finally:
            await hub.close()
    return cpu / count * 1e6, in_map[0] / count * 1e6


async def engine_share(count: int, runs: int) -> None:
    print(f"\nin-process engine, SQLite, {count:,} deliveries answered 200 (CPU µs per delivery):")
    without, with_, inside = [], [], []
    for _ in range(runs):
        without.append((await deliver(count, with_map=False))[0])
        cpu, in_map = await deliver(count, with_map=True)
        with_.append(cpu)
        inside.append(in_map)
    a, b = min(without), min(with_)
    print(f"  without a map: best {a:.1f}, rounds {', '.join(f'{x:.0f}' for x in without)}")
    print(f"  with the map:  best {b:.1f}, rounds {', '.join(f'{x:.0f}' for x in with_)}")
    print(f"  difference:    {b - a:+.1f} µs per delivery")
    print(
        f"  inside the map (timed around each call): best {min(inside):.1f} µs per delivery, "
        f"rounds {', '.join(f'{x:.1f}' for x in inside)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engine", type=int, default=0, help="deliveries for part 2 (0: skip)")
    args = parser.parse_args()
    libraries(args.documents, args.runs)
    if args.engine:
        asyncio.run(engine_share(args.engine, args.runs))


if __name__ == "__main__":
    main()
