"""The engine's hot path on PostgreSQL with psycopg 3 (through SQLAlchemy, and alone) and asyncpg.

    python bench/pg_drivers.py [--docs 50000] [--batch 500] [--rounds 3] [--pg URL]

A fresh database (the project's migrations), N documents, N pending deliveries, taken through
the engine's cycle a batch at a time: one transaction leases the batch and reads its documents
(the claim's two statements); another inserts the attempts and records the outcomes as
delivered (one statement each, rows as one JSON parameter). Variants, each on one connection,
reset between: interlink (store.queries.claims itself), sqlalchemy (the same SQL through
exec_driver_sql), executemany (as sqlalchemy, outcomes as one UPDATE per row: the old way),
psycopg (alone), asyncpg (uvloop).
Prints the median over the rounds of deliveries/s and µs per delivery of wall time, this
process's CPU and the server backend's CPU (/proc, local server); then per driver the round trip
of SELECT 1 and of a SELECT of 500 documents by id = ANY. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psycopg
import uvloop
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import PG_DEFAULT

from interlink import runner
from interlink.store.queries import claims
from interlink.store.db import open_store

FLOW = "trading-treasury"
LEASE = timedelta(minutes=5)
VARIANTS = ("interlink", "sqlalchemy", "executemany", "psycopg", "asyncpg")
Figures = tuple[float, float, float, float]  # deliveries/s; µs per delivery: wall, CPU, server
Rows = list[dict[str, Any]]
Run = Callable[[Any, str, Any], list[Any]]  # (connection, SQL, parameters) -> rows
Claim = Callable[[Any, datetime, int], list[Any]]  # lease a batch and read its payloads
Write = Callable[[Any, Rows, Rows], None]  # record outcomes and insert attempts

# The statements the store sends (queries._PG_CLAIM_*, _PG_ATTEMPTS, _PG_RECORD), the claim's
# named placeholders made positional in order of appearance (see claim_params).
LEASE_URGENT = re.sub(r"%\(\w+\)s", "%s", claims._PG_CLAIM_URGENT)
LEASE_REST = re.sub(r"%\(\w+\)s", "%s", claims._PG_CLAIM_REST)
PAYLOADS = "SELECT id, type, payload FROM documents WHERE id = ANY(%s::text[])"
# What record_outcomes ran before the JSON form, through executemany.
RECORD_ONE = (
    "UPDATE deliveries SET status=%s, reason=%s, attempts=%s, failures=%s, next_at=%s, "
    "lease_until=NULL, first_failure_at=%s, delivered_at=%s, last_error=%s, probe=%s, "
    "updated_at=%s WHERE id=%s AND status='in_flight' AND lease_until=%s"
)
RECORD_ONE_KEYS = (
    *("status", "reason", "attempts", "failures", "next_at", "first_failure_at"),
    *("delivered_at", "last_error", "probe", "updated_at", "b_id", "b_lease"),
)


def numbered(sql: str) -> str:
    """``%s`` placeholders as asyncpg's ``$1``, ``$2``, ..."""
    head, *rest = sql.split("%s")
    return head + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))


def lease_params(now: datetime, limit: int) -> tuple[Any, ...]:
    return (FLOW, now, limit, now + LEASE, now)


def outcomes(claimed: list[Any], now: datetime) -> tuple[Rows, Rows]:
    """The engine's rows for a batch all delivered (claimed: id 0, attempts 6, lease_until 9)."""
    updates = [
        {"b_id": r[0], "b_lease": r[9], "status": "delivered", "reason": None,
         "attempts": r[6] + 1, "failures": 0, "next_at": None, "first_failure_at": None,
         "delivered_at": now, "last_error": None, "probe": False, "updated_at": now}
        for r in claimed
    ]  # fmt: skip
    attempts = [
        {"delivery_id": r[0], "started_at": now, "elapsed_ms": 3.5, "status_code": 200,
         "outcome": "delivered", "detail": "HTTP 200", "response": '{"ok":true}', "probe": False}
        for r in claimed
    ]  # fmt: skip
    return updates, attempts


def clocks(backend_pid: int) -> tuple[float, float, float]:
    """Seconds of wall time, of this process's CPU and of the backend's CPU (NaN if remote)."""
    try:
        with open(f"/proc/{backend_pid}/schedstat") as f:
            server = int(f.read().split()[0]) / 1e9
    except (OSError, ValueError):
        server = float("nan")
    return time.perf_counter(), time.process_time(), server


def figures(start: tuple[float, float, float], backend_pid: int, done: int) -> Figures:
    wall, cpu, server = (b - a for a, b in zip(start, clocks(backend_pid), strict=True))
    return done / wall, wall * 1e6 / done, cpu * 1e6 / done, server * 1e6 / done


def text_steps(run: Run, one_per_row: bool = False) -> tuple[Claim, Write]:
    def claim(conn: Any, now: datetime, limit: int) -> list[Any]:
        rows = run(conn, LEASE_URGENT, lease_params(now, limit))
        rows += run(conn, LEASE_REST, lease_params(now, limit - len(rows)))
        return rows

    def write(conn: Any, updates: Rows, attempts: Rows) -> None:
        run(conn, claims._PG_ATTEMPTS, (orjson.dumps(attempts).decode(),))
        if one_per_row:  # a list of tuples: executemany
            run(conn, RECORD_ONE, [tuple(u[k] for k in RECORD_ONE_KEYS) for u in updates])
        else:
            run(conn, claims._PG_RECORD, (orjson.dumps(updates).decode(),))

    return claim, write


def store_claim(conn: Connection, now: datetime, limit: int) -> list[Any]:
    return claims.claim(conn, FLOW, now, now + LEASE, limit)  # the documents come with the rows


def store_write(conn: Connection, updates: Rows, attempts: Rows) -> None:
    claims.insert_attempts(conn, attempts)
    claims.record_outcomes(conn, updates)


def sa_run(conn: Connection, sql: str, params: Any) -> list[Any]:
    result = conn.exec_driver_sql(sql, params)
    return list(result.all()) if result.returns_rows else []


def pg_run(conn: psycopg.Connection[Any], sql: str, params: Any) -> list[Any]:
    cursor = conn.execute(sql, params)
    return cursor.fetchall() if cursor.description else []


@contextmanager
def transaction(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    with conn.transaction():
        yield conn


def sync_cycle(
    begin: Callable[[], AbstractContextManager[Any]], steps: tuple[Claim, Write], pid: int, n: int
) -> Figures:
    (claim, write), start, done = steps, clocks(pid), 0
    while True:
        now = datetime.now(UTC)
        with begin() as conn:
            claimed = claim(conn, now, n)
        if not claimed:
            return figures(start, pid, done)
        with begin() as conn:
            write(conn, *outcomes(claimed, now))
        done += len(claimed)


async def asyncpg_cycle(url: str, n: int) -> Figures:
    conn = await asyncpg.connect(url)
    urgent, rest, insert, record = map(
        numbered, (LEASE_URGENT, LEASE_REST, claims._PG_ATTEMPTS, claims._PG_RECORD)
    )
    try:
        pid = conn.get_server_pid()
        start, done = clocks(pid), 0
        while True:
            now = datetime.now(UTC)
            async with conn.transaction():
                claimed = await conn.fetch(urgent, *lease_params(now, n))
                claimed += await conn.fetch(rest, *lease_params(now, n - len(claimed)))
            if not claimed:
                return figures(start, pid, done)
            updates, attempts = outcomes(claimed, now)
            async with conn.transaction():  # asyncpg wants the JSON parameter as a str
                await conn.execute(insert, orjson.dumps(attempts).decode())
                await conn.execute(record, orjson.dumps(updates).decode())
            done += len(claimed)
    finally:
        await conn.close()


def run_variant(variant: str, url: str, n: int, loop: asyncio.Runner) -> Figures:
    if variant == "asyncpg":
        return loop.run(asyncpg_cycle(url, n))
    if variant == "psycopg":
        with psycopg.connect(url, autocommit=True) as conn:
            pid = conn.info.backend_pid
            return sync_cycle(lambda: transaction(conn), text_steps(pg_run), pid, n)
    # The store's engine settings (store/db.py): a pre-ping on every checkout.
    engine = create_engine(sa_url(url), pool_pre_ping=True, pool_size=8, max_overflow=8)
    try:
        with engine.connect() as conn:  # the pool hands out this one connection every time
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        if variant == "interlink":
            return sync_cycle(engine.begin, (store_claim, store_write), pid, n)
        return sync_cycle(engine.begin, text_steps(sa_run, variant == "executemany"), pid, n)
    finally:
        engine.dispose()


def sa_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def load(admin: psycopg.Connection[Any], docs: int) -> None:
    key = "'PO-' || lpad(i::text, 8, '0')"
    admin.execute(
        "INSERT INTO documents (id, type, key, revision, identity, payload_hash, payload, source, "
        f"received_at) SELECT md5(i::text), 'payment_order', {key}, 1, {key}, md5({key}), "
        f"json_build_object('order_no', {key}, 'amount', '100.00', 'currency', 'CNY', 'kind', "
        f"'pay')::text, 'trading', now() FROM generate_series(1, {docs}) AS i;"
        "INSERT INTO deliveries (document_id, flow, system, key, revision, status, attempts, "
        f"failures, probe, created_at, updated_at) SELECT md5(i::text), '{FLOW}', 'treasury', "
        f"{key}, 1, 'pending', 0, 0, false, now(), now() FROM generate_series(1, {docs}) AS i"
    )


def reset(admin: psycopg.Connection[Any]) -> None:
    """Every delivery pending again, due in id order; no attempts; vacuumed; checkpointed."""
    admin.execute(
        "UPDATE deliveries SET status = 'pending', lease_until = NULL, attempts = 0, "
        "delivered_at = NULL, updated_at = created_at, "
        "next_at = created_at - interval '1 day' + id * interval '1 ms'"
    )
    admin.execute("TRUNCATE attempts")
    admin.execute("VACUUM ANALYZE deliveries, documents, attempts")
    admin.execute("CHECKPOINT")


def check(admin: psycopg.Connection[Any], variant: str, docs: int) -> None:
    delivered = "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
    row = admin.execute(f"SELECT ({delivered}), (SELECT count(*) FROM attempts)").fetchone()
    if row != (docs, docs):
        raise RuntimeError(f"{variant}: (delivered, attempts) = {row}, expected {docs} each")


def timed(
    calls: Callable[[str, tuple[Any, ...], int], object], n: int, sql: str, *params: Any
) -> str:
    """µs of wall time (of client CPU) per query; ``calls(sql, params, n)`` runs it n times."""
    calls(sql, params, 10)  # warm-up: statements prepared
    wall, cpu = time.perf_counter(), time.process_time()
    calls(sql, params, n)
    wall, cpu = (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6
    return f"{wall:8,.0f} ({cpu:5,.0f})"


def sync_calls(run: Run, conn: Any, sql: str, params: tuple[Any, ...], n: int) -> None:
    for _ in range(n):
        run(conn, sql, params)


async def asyncpg_calls(conn: Any, sql: str, params: tuple[Any, ...], n: int) -> None:
    for _ in range(n):
        await conn.fetch(numbered(sql), *params)


def micro(url: str, admin: psycopg.Connection[Any], loop: asyncio.Runner) -> None:
    ids = [r[0] for r in admin.execute("SELECT id FROM documents ORDER BY random() LIMIT 500")]
    print(f"\nµs per round trip (client CPU)  SELECT 1  SELECT {len(ids)} documents by id = ANY")
    engine = create_engine(sa_url(url))
    apg = loop.run(asyncpg.connect(url))
    with engine.connect() as sa, psycopg.connect(url, autocommit=True) as pg:
        for name, calls in (
            ("sqlalchemy", partial(sync_calls, sa_run, sa)),
            ("psycopg", partial(sync_calls, pg_run, pg)),
            ("asyncpg", lambda *args: loop.run(asyncpg_calls(apg, *args))),
        ):
            print(
                f"{name:18s} {timed(calls, 2000, 'SELECT 1')}  {timed(calls, 200, PAYLOADS, ids)}"
            )
    loop.run(apg.close())
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=PG_DEFAULT)
    args = parser.parse_args()
    runner.tune_gc()  # the worker's GC settings
    name = f"bench_drivers_{uuid.uuid4().hex[:10]}"
    url = make_url(args.pg).set(drivername="postgresql", database=name)
    url_text = url.render_as_string(hide_password=False)
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        open_store(url_text).close()
        results: dict[str, list[Figures]] = {v: [] for v in VARIANTS}
        with (
            psycopg.connect(url_text, autocommit=True) as admin,
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop,
        ):
            load(admin, args.docs)
            print(
                f"{os.cpu_count()} cores; {args.docs:,} deliveries in batches of {args.batch}; "
                f"median of {args.rounds} rounds; µs per delivery"
            )
            for _ in range(args.rounds):
                for variant in VARIANTS:
                    reset(admin)
                    results[variant].append(run_variant(variant, url_text, args.batch, loop))
                    check(admin, variant, args.docs)
            print(f"{'variant':12s} deliveries/s  wall µs  client CPU µs  server CPU µs")
            for variant, runs in results.items():
                rate, wall, cpu, server = map(statistics.median, zip(*runs, strict=True))
                print(f"{variant:12s} {rate:12,.0f} {wall:8.1f} {cpu:14.1f} {server:14.1f}")
            micro(url_text, admin, loop)
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
