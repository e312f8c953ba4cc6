"""Reconciliation at scale: N delivered documents against an N-row CSV export.

    python bench/reconcile.py [--docs 1000000] [--keep DIR] [--shuffle]

--shuffle writes the export in random order (the comparison then sorts it); without it the
export comes in key order, as many downstream exports do. --keep DIR keeps (and reuses) the
fixture in DIR.

Builds a store with N delivered documents on one flow (rows inserted directly in batches: a
benchmark fixture, not the product path) and a CSV export with a few hundred differences, then
times the reconcile in process and through the CLI, with peak RSS of each. Prints the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from interlink.features.reconcile.service import reconcile
from interlink.clock import FakeClock
from interlink.config import load
from interlink.features.reconcile.sources import read_file
from interlink.service import Hub
from interlink.features.registry import FEATURES

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///{db}
systems:
  trading: {{}}
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order:
    key: order_no
    amount: amount
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, when: {{kind: refund}}}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    reconcile:
      map: {{key: order_no, amount: amount, status: status, date: booked_at}}
      status_map: {{payment: PAID, refund: REFUNDED}}
      tolerance: "0.01"
"""

DAY = datetime(2026, 1, 5, tzinfo=UTC) - timedelta(hours=8)  # 2026-01-05 00:00 Shanghai
FLOW = "trading-treasury"


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(folder: Path, n: int, shuffle: bool) -> tuple[Path, Path, dict[str, int]]:
    db = folder / "hub.db"
    config = folder / "interlink.yaml"
    export = folder / ("shuffled.csv" if shuffle else "export.csv")
    expected_file = folder / "expected.json"
    if db.exists() and export.exists() and expected_file.exists():
        return config, export, json.loads(expected_file.read_text())
    if db.exists():
        db.unlink()
    config.write_text(TOPOLOGY.format(db=db))
    Hub(load(config), features=FEATURES).store.close()  # migrate
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    step = 86_400 / n
    docs, dels = [], []
    for i in range(n):
        at = DAY + timedelta(seconds=i * step)
        key = f"PO{i:08d}"
        kind = "refund" if i % 10 == 0 else "pay"
        scenario = "refund" if kind == "refund" else "payment"
        amount = f"{(i % 100000) / 100 + 1:.2f}"
        doc_id = f"D{i:025d}"
        payload = json.dumps({"order_no": key, "amount": amount, "kind": kind})
        docs.append(
            (
                doc_id,
                "payment_order",
                key,
                1,
                key,
                "h",
                payload,
                "trading",
                scenario,
                None,
                amount,
                _ts(at),
            )
        )
        dels.append(
            (
                doc_id,
                FLOW,
                "treasury",
                key,
                1,
                "delivered",
                None,
                1,
                0,
                None,
                None,
                None,
                None,
                0,
                _ts(at),
                _ts(at),
                _ts(at + timedelta(seconds=1)),
                None,
            )
        )
        if len(docs) >= 50_000:
            _flush(conn, docs, dels)
    _flush(conn, docs, dels)
    conn.commit()
    conn.close()

    expected = {
        "missing": 0,
        "extra": 0,
        "amount_mismatch": 0,
        "status_mismatch": 0,
        "duplicate": 0,
    }
    lines: list[list[str]] = []
    with export.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order_no", "amount", "status", "booked_at"])
        for i in range(n):
            key = f"PO{i:08d}"
            amount = f"{(i % 100000) / 100 + 1:.2f}"
            status = "REFUNDED" if i % 10 == 0 else "PAID"
            at = (DAY + timedelta(seconds=i * 86_400 / n, hours=8)).strftime("%Y-%m-%d %H:%M:%S")
            if i % 10_000 == 1:
                expected["missing"] += 1
                continue
            if i % 10_000 == 2:
                amount = f"{float(amount) + 5:.2f}"
                expected["amount_mismatch"] += 1
            if i % 10_000 == 3:
                status = "PAID" if status == "REFUNDED" else "REFUNDED"
                expected["status_mismatch"] += 1
            lines.append([key, amount, status, at])
            if i % 20_000 == 4:
                lines.append([key, amount, status, at])
                expected["duplicate"] += 1
        for j in range(n // 10_000):
            lines.append([f"XX{j:08d}", "1.00", "PAID", "2026-01-05 12:00:00"])
            expected["extra"] += 1
        if shuffle:
            random.Random(7).shuffle(lines)
        w.writerows(lines)
    expected_file.write_text(json.dumps(expected))
    return config, export, expected


def _flush(conn: sqlite3.Connection, docs: list, dels: list) -> None:
    conn.executemany(
        "INSERT INTO documents (id, type, key, revision, identity, payload_hash, payload, "
        "source, scenario, deadline, amount, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        docs,
    )
    conn.executemany(
        "INSERT INTO deliveries (document_id, flow, system, key, revision, status, reason, "
        "attempts, failures, next_at, lease_until, first_failure_at, deadline, probe, "
        "created_at, updated_at, delivered_at, last_error) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        dels,
    )
    docs.clear()
    dels.clear()


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--shuffle", action="store_true")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    config, export, expected = build(folder, args.docs, args.shuffle)
    print(f"fixture: {args.docs:,} documents and export built in {time.perf_counter() - t0:.1f} s")
    print(f"export: {export.stat().st_size / 1e6:.1f} MB; expected {expected}")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hub = Hub(load(config), clock=FakeClock(), features=FEATURES)
    service = reconcile(hub)
    since, until = DAY, DAY + timedelta(days=1)
    t0 = time.perf_counter()
    cpu0 = _cpu(resource.RUSAGE_SELF)
    result = service.run(FLOW, read_file(export), since=since, until=until, actor="bench")
    elapsed = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_SELF) - cpu0
    hub.store.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"in process: {elapsed:.2f} s wall, {cpu:.2f} s CPU, categories {result.counts()}, "
        f"peak RSS {rss / 1024:.0f} MB (fixture building included; "
        f"{rss_before / 1024:.0f} MB before the run)"
    )

    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "interlink.cli",
            "reconcile",
            FLOW,
            "--file",
            str(export),
            "--date",
            "2026-01-05",
            "--json",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    elapsed = time.perf_counter() - t0
    child_cpu = _cpu(resource.RUSAGE_CHILDREN)
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    body = json.loads(done.stdout) if done.stdout.strip() else {}
    print(
        f"CLI: {elapsed:.2f} s wall, {child_cpu:.2f} s CPU (process start included), "
        f"exit {done.returncode}, "
        f"categories {body.get('categories')}, peak RSS {child / 1024:.0f} MB"
    )
    if done.returncode not in (0, 1):
        print(done.stderr)
    print(
        textwrap.dedent(f"""\
        totals: {body.get("totals")}
        folder: {folder}""")
    )


if __name__ == "__main__":
    main()
