"""Celery with Redis against the bare ceiling and Interlink, in one run (issue 13).

    python bench/celery_compare.py [--docs 20000] [--pools prefork:2,prefork:8,threads:64,gevent:64]
                                   [--redis redis://127.0.0.1:6379/0] [--no-interlink]

Against one receiver in its own process on loopback (bench/receiver.py), with the same
documents:

1. the bare aiohttp ceiling of bench/throughput.py (64 connections, no durability);
2. Interlink's delivery phase from bench/throughput.py (bulk submit, then the engine);
3. Celery, one task per document: the task POSTs the document with a pooled urllib3 client
   per worker process, ``autoretry_for=(Exception,)`` with exponential backoff, and
   ``acks_late`` with ``reject_on_worker_lost`` so a task survives a worker's death, as a
   delivery survives ours. For each pool the producer enqueues every document first (timed
   apart), then a real ``celery worker`` process starts and the rate is taken from the
   receiver's first to its last receipt, as Interlink's delivery phase is;
4. the ceiling again, to show how much the shared machine moved during the run.

Every phase checks that each document arrived, and counts duplicates (requests beyond the
unique Idempotency-Keys). CPU per document, which a shared machine moves less than rates:
Interlink's process for intake and delivery together; for Celery, the worker processes from
the first to the last receipt and the producer while it enqueues (Redis's own CPU is not
counted). Not a test: numbers go to docs/benchmarks.md.

The Celery app and task live at the top of this module because the worker processes import
it (``celery -A celery_compare``); everything Interlink is imported only by ``main``.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import orjson
import urllib3
from celery import Celery

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

DEFAULT_REDIS = os.environ.get("INTERLINK_TEST_REDIS", "redis://127.0.0.1:6379/0")
DEFAULT_POOLS = "prefork:2,prefork:8,threads:64,gevent:64"
# A queue of our own, so a purge never touches anything else kept in the same Redis.
QUEUE = "interlink-bench-celery"

app = Celery("celery_compare", broker=os.environ.get("BENCH_CELERY_BROKER", DEFAULT_REDIS))
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    worker_disable_rate_limits=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # kombu's Redis transport allows 10 connections per worker by default; with acks_late every
    # busy greenlet or thread acknowledges on its own connection, and at 64 the gevent pool
    # failed with "Too many connections" and left a task unacknowledged until the visibility
    # timeout (an hour).
    broker_transport_options={"max_connections": 256},
)

_client: urllib3.PoolManager | None = None
_client_lock = threading.Lock()


class DeliveryFailed(Exception):
    """The receiver answered something other than 2xx; autoretry sends the task again."""


def client() -> urllib3.PoolManager:
    """One pooled client per worker process, made lazily so prefork children never share the
    parent's sockets; sized to the threads or greenlets of that process."""
    global _client
    with _client_lock:
        if _client is None:
            _client = urllib3.PoolManager(
                maxsize=int(os.environ.get("BENCH_CELERY_CONCURRENCY", "1")),
                block=True,
                retries=False,  # retrying is Celery's job here, as it is the engine's for us
                timeout=urllib3.Timeout(connect=5, read=30),
            )
        return _client


@app.task(
    name="bench.deliver",
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=None,
    acks_late=True,
    reject_on_worker_lost=True,
)
def deliver(document: dict[str, object], key: str) -> None:
    response = client().request(
        "POST",
        os.environ["BENCH_RECEIVER_URL"] + "/payments",
        body=orjson.dumps(document),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    if not 200 <= response.status < 300:
        raise DeliveryFailed(f"{response.status} for {key}")


# ---- the run, in the producer process only -------------------------------------------------


def parse_pools(text: str) -> list[tuple[str, int]]:
    pools = []
    for part in text.split(","):
        name, _, size = part.strip().partition(":")
        if name not in {"prefork", "threads", "gevent", "eventlet", "solo"} or not size.isdigit():
            raise SystemExit(f"--pools: {part!r} is not POOL:CONCURRENCY (e.g. threads:64)")
        pools.append((name, int(size)))
    return pools


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its live children (Linux /proc).

    Read at the first and the last receipt, it leaves out the worker's start-up, which would
    otherwise weigh on a 20,000-document run.
    """
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def purge() -> None:
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)


def queued() -> int:
    with app.connection_for_write() as connection:
        return int(connection.default_channel.client.llen(QUEUE))


async def celery_pool(url: str, n: int, pool: str, concurrency: int) -> dict[str, float] | str:
    """Enqueue ``n`` tasks, start one worker with ``pool``, wait until all have arrived.

    Returns the figures, or a sentence saying why the pool did not finish.
    """
    import asyncio
    import subprocess
    import tempfile
    import time

    import aiohttp
    from throughput import payload, reset, stats

    purge()
    async with aiohttp.ClientSession() as session:
        await reset(session, url)
    t0, cpu0 = time.perf_counter(), time.process_time()
    with app.producer_or_acquire() as producer:
        for i in range(n):
            document = payload(i)
            deliver.apply_async((document, str(document["order_no"])), producer=producer)
    enqueue, enqueue_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    env = {
        **os.environ,
        "BENCH_CELERY_BROKER": str(app.conf.broker_url),
        "BENCH_RECEIVER_URL": url,
        "BENCH_CELERY_CONCURRENCY": str(concurrency),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "celery", "-A", "celery_compare", "worker"]
    command += ["--pool", pool, "--concurrency", str(concurrency), "--queues", QUEUE]
    command += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    command += ["--without-heartbeat", "--hostname", f"bench-{pool}-{concurrency}@%h"]
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        worker = subprocess.Popen(
            command, cwd=BENCH, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        failure = ""
        try:
            async with aiohttp.ClientSession() as session:
                progress, since = -1, time.monotonic()
                cpu_first: tuple[int, float] | None = None
                worker_cpu = 0.0
                while True:
                    await asyncio.sleep(0.1)  # a benchmark polling for completion, not a test
                    seen = await stats(session, url)
                    unique = int(seen["unique"])  # type: ignore[call-overload]
                    if unique and cpu_first is None:
                        cpu_first = unique, tree_cpu(worker.pid)
                    if unique >= n:
                        assert cpu_first is not None
                        cpu = tree_cpu(worker.pid) - cpu_first[1]
                        worker_cpu = cpu / max(1, unique - cpu_first[0])
                        break
                    if worker.poll() is not None:
                        failure = f"worker exited with {worker.returncode}"
                        break
                    if unique != progress:
                        progress, since = unique, time.monotonic()
                    elif time.monotonic() - since > 60:
                        failure = f"no progress for 60 s at {unique:,} of {n:,}"
                        break
        finally:
            worker.terminate()  # warm shutdown: unacknowledged tasks go back to the queue
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if failure:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
            return failure + ("; worker said: " + " | ".join(tail) if tail else "")
    async with aiohttp.ClientSession() as session:
        seen = await stats(session, url)
    first, last = float(seen["first"]), float(seen["last"])  # type: ignore[arg-type]
    requests, unique = int(seen["requests"]), int(seen["unique"])  # type: ignore[call-overload]
    return {
        "enqueue": n / enqueue,
        "rate": n / (last - first),
        "from_start": n / (last - started),
        "enqueue_cpu_us": enqueue_cpu / n * 1e6,
        "worker_cpu_us": worker_cpu * 1e6,
        "duplicates": requests - unique,
        "missing": n - unique,
        "left": queued(),
    }


async def main() -> None:
    import argparse
    import tempfile
    import time

    import aiohttp
    from receiver import ReceiverProcess
    from throughput import CONCURRENCY, TOKEN, ceiling, end_to_end, stats

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--pools", default=DEFAULT_POOLS, help="POOL:CONCURRENCY, comma-separated")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="broker URL (a Redis database)")
    parser.add_argument(
        "--no-interlink", action="store_true", help="skip Interlink's own delivery phase"
    )
    args = parser.parse_args()
    pools = parse_pools(args.pools)
    app.conf.broker_url = args.redis
    try:
        queued()
    except Exception as exc:  # any broker error means the same thing to the person running this
        raise SystemExit(f"cannot reach Redis at {args.redis}: {exc}") from None
    os.environ["BENCH_TOKEN"] = TOKEN
    n = args.docs
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {n:,} documents")
    with ReceiverProcess() as receiver:
        url = receiver.url
        ceil = await ceiling(url, n)
        print(f"bare aiohttp ceiling        {ceil:10,.0f} POST/s   ({CONCURRENCY} connections)")
        if not args.no_interlink:
            with tempfile.TemporaryDirectory() as tmp:
                cpu0 = time.process_time()
                _total, deliver_rate, submit = await end_to_end(Path(tmp), url, n)
                cpu = (time.process_time() - cpu0) / n * 1e6
            async with aiohttp.ClientSession() as session:
                seen = await stats(session, url)
            first_last = n / (float(seen["last"]) - float(seen["first"]))  # type: ignore[arg-type]
            dupes = int(seen["requests"]) - int(seen["unique"])  # type: ignore[call-overload]
            print(
                f"interlink delivery phase    {deliver_rate:10,.0f} docs/s   "
                f"{deliver_rate / ceil:.2f}x (engine start to all delivered; first to last "
                f"receipt {first_last:,.0f}/s; submit {submit:,.0f}/s; {cpu:.0f} µs CPU/doc "
                f"for intake and delivery; duplicates {dupes})"
            )
        best: tuple[float, str] | None = None
        for pool, concurrency in pools:
            label = f"celery {pool}:{concurrency}"
            result = await celery_pool(url, n, pool, concurrency)
            if isinstance(result, str):
                print(f"{label:<27} did not finish: {result}")
                continue
            print(
                f"{label:<27} {result['rate']:10,.0f} docs/s   {result['rate'] / ceil:.2f}x "
                f"(first to last receipt; {result['from_start']:,.0f}/s from worker start; "
                f"enqueue {result['enqueue']:,.0f}/s; µs CPU/doc: worker "
                f"{result['worker_cpu_us']:.0f}, enqueue {result['enqueue_cpu_us']:.0f}; "
                f"duplicates {result['duplicates']:.0f}, "
                f"missing {result['missing']:.0f}, left in queue {result['left']:.0f})"
            )
            if best is None or result["rate"] > best[0]:
                best = (result["rate"], label)
        again = await ceiling(url, n)
        print(f"ceiling again at the end    {again:10,.0f} POST/s")
        if best:
            print(f"best celery: {best[1]}, {best[0]:,.0f} docs/s = {best[0] / ceil:.2f}x ceiling")


if __name__ == "__main__":
    from interlink import runner

    runner.run(main())
