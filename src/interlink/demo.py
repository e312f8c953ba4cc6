"""The demo: the Interlink story in about a minute, on SQLite in a temporary folder.

Four simulated downstream systems listen on loopback. The trading system submits payment
orders, refunds (later revisions of the same order, so ordering matters) and customers. The
treasury goes down for a release and comes back; its deliveries are held, not failed, and drain
when the probe gets through. Finance rejects one order ("account closed"), which goes dead until
the account is fixed and the delivery re-pushed. A live table shows every flow; the last line
says how many documents were submitted, delivered and lost, checked against what the
downstreams actually received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from interlink import runner
from interlink.clock import SystemClock
from interlink.config import loads
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.loopback import LoopbackServer
from interlink.service import DeliveryFilter, Hub
from interlink.store.db import open_store
from interlink.transports import default_transport

REJECTED_ORDER = "PO-0042"
REJECTION = "account closed"
LOG_LINES = 10


@dataclass(frozen=True)
class Timeline:
    """Seconds from the start."""

    produce_for: float
    rate: float  # documents per second
    down_at: float
    up_at: float
    fix_at: float
    cap: float


NORMAL = Timeline(produce_for=50, rate=20, down_at=10, up_at=25, fix_at=40, cap=90)
FAST = Timeline(produce_for=8, rate=40, down_at=1.5, up_at=5, fix_at=7, cap=35)

TOPOLOGY = """\
timezone: UTC
database: sqlite:///demo.db
systems:
  trading: {{title: Trading system}}
  treasury: {{title: Treasury, url: "{treasury}", timeout: 2s}}
  finance: {{title: Finance, url: "{finance}", timeout: 2s}}
  member: {{title: Member system, url: "{member}", timeout: 2s}}
  points: {{title: Points system, url: "{points}", timeout: 2s}}
documents:
  payment_order:
    key: order_no
    amount: amount
    scenarios:
      - {{name: payment, direction: forward, likelihood: high, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, likelihood: low, when: {{kind: refund}}}}
  customer:
    key: customer_id
flows:
  trading-treasury:
    {{from: trading, to: treasury, document: payment_order, path: /payments, ordered: true,
     retry: [1s, 2s, 5s], give_up_after: 10m}}
  trading-finance:
    {{from: trading, to: finance, document: payment_order, path: /trades,
     retry: [1s, 2s, 5s], give_up_after: 10m}}
  trading-member:
    {{from: trading, to: member, document: customer, path: /customers,
     retry: [1s, 2s, 5s], give_up_after: 10m}}
  trading-points:
    {{from: trading, to: points, document: customer, path: /customers,
     retry: [1s, 2s, 5s], give_up_after: 10m}}
engine:
  circuit_threshold: 3
  probe_interval: 2s
  probe_max: 4s
"""


class Downstream:
    """A simulated downstream system: records what it received, and can be switched down,
    back up, or told to reject a business key."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.keys: set[str] = set()  # unique Idempotency-Keys: one per document received
        self.requests = 0
        self.rejects: dict[str, str] = {}
        self.unavailable = False  # answer 503 while listening
        self.out_of_order = 0
        self._revisions: dict[str, int] = {}
        self._server: LoopbackServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the downstream first"
        return self._server.url

    async def start(self) -> Downstream:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._server = await LoopbackServer.start(app, shutdown_timeout=1.0)
        return self

    async def up(self) -> None:
        self.unavailable = False
        if self._server is not None:
            await self._server.listen()

    async def down(self) -> None:
        """Stop listening and drop open connections: every request meets a closed port."""
        if self._server is not None:
            await self._server.refuse()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests += 1
        if self.unavailable:
            return web.Response(status=503, text="down for maintenance")
        key = request.headers.get("Interlink-Key", "")
        if key in self.rejects:
            return web.Response(status=422, text=self.rejects[key])
        document_id = request.headers.get("Idempotency-Key", "")
        if document_id not in self.keys:
            self.keys.add(document_id)
            revision = int(request.headers.get("Interlink-Revision", "1"))
            if revision < self._revisions.get(key, 0):
                self.out_of_order += 1
            self._revisions[key] = max(revision, self._revisions.get(key, 0))
        return web.json_response({"ok": True})


class Trading:
    """The upstream: payment orders, refunds of recent ones, and customers."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible story, not a secret
        self.orders = 0
        self.customers = 0
        self.refundable: list[dict[str, Any]] = []

    def next_item(self) -> Item:
        roll = self.rng.random()
        if roll < 0.4:
            self.customers += 1
            number = f"C-{self.customers:04d}"
            name = self.rng.choice(["Li Wei", "Wang Fang", "Zhang Min", "Chen Jing", "Liu Yang"])
            return Item("customer", {"customer_id": number, "name": name, "level": "gold"})
        if roll < 0.55 and self.refundable:
            order = self.refundable.pop(self.rng.randrange(len(self.refundable)))
            return Item("payment_order", {**order, "kind": "refund"})
        self.orders += 1
        order = {
            "order_no": f"PO-{self.orders:04d}",
            "kind": "pay",
            "amount": f"{self.rng.randint(1000, 500000) / 100:.2f}",
            "currency": "CNY",
            "payee_account": f"6222{self.rng.randint(10**11, 10**12 - 1)}",
        }
        if order["order_no"] != REJECTED_ORDER:
            self.refundable = [*self.refundable[-19:], order]
        return Item("payment_order", order)


class Demo:
    def __init__(self, timeline: Timeline, console: Console) -> None:
        self.timeline = timeline
        self.console = console
        self.live_mode = console.is_terminal
        self.downstreams = {n: Downstream(n) for n in ("treasury", "finance", "member", "points")}
        self.trading = Trading()
        self.submitted: dict[str, list[str]] = defaultdict(list)  # type → document ids
        self.log: list[str] = []
        self.status: dict[str, Any] = {"flows": {}, "systems": {}}
        self.last_event = 0
        self.started = 0.0
        self.producing = True
        self.phase = "running"

    # -- the story ------------------------------------------------------------------------

    async def run(self) -> int:
        with tempfile.TemporaryDirectory(prefix="interlink-demo-") as tmp:
            for downstream in self.downstreams.values():
                await downstream.start()
            urls = {name: d.url for name, d in self.downstreams.items()}
            topology = loads(TOPOLOGY.format(**urls), path=str(Path(tmp) / "interlink.yaml"))
            # Our own store, so that INTERLINK_DATABASE_URL never points the demo elsewhere.
            store = open_store(f"sqlite:///{Path(tmp) / 'demo.db'}")
            hub = Hub(
                topology,
                store=store,
                clock=SystemClock(),
                transport=default_transport(),
                features=FEATURES,
            )
            stop = asyncio.Event()
            engine = asyncio.create_task(hub.engine.run(stop))
            try:
                return await self._story(hub)
            finally:
                stop.set()
                await engine
                await hub.close()
                for downstream in self.downstreams.values():
                    await downstream.stop()

    async def _story(self, hub: Hub) -> int:
        self.started = time.monotonic()
        self.downstreams["finance"].rejects[REJECTED_ORDER] = REJECTION
        self.say(
            f"trading starts submitting payment orders, refunds and customers "
            f"(~{self.timeline.rate:.0f}/s)"
        )
        tasks = [
            asyncio.create_task(self._produce(hub)),
            asyncio.create_task(self._script(hub)),
        ]
        try:
            if self.live_mode:
                with Live(self.render(), console=self.console, refresh_per_second=4) as live:
                    while not await self._tick(hub):
                        live.update(self.render())
                    live.update(self.render())
            else:
                next_line = 0.0
                while not await self._tick(hub):
                    if self.elapsed() >= next_line:
                        self.console.print(self.progress_line(), markup=False)
                        next_line += 5
                self.console.print(self.render(with_log=False))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.summary()

    async def _produce(self, hub: Hub) -> None:
        source = hub.topology.systems["trading"]
        tick = 0.25
        per_tick = max(1, round(self.timeline.rate * tick))
        ticks = 0
        while self.elapsed() < self.timeline.produce_for:
            items = [self.trading.next_item() for _ in range(per_tick)]
            for item, result in zip(items, await hub.intake.submit(source, items), strict=True):
                if isinstance(result, dict):
                    if not result["duplicate"]:
                        self.submitted[item.type].append(result["id"])
                else:
                    self.say(f"refused {item.type}: {result.message}")
            ticks += 1
            # Pacing the simulated upstream, not waiting for an outcome.
            await asyncio.sleep(max(0.0, self.started + ticks * tick - time.monotonic()))
        self.producing = False
        self.say(f"trading stops: {self.count_submitted()} documents submitted")

    async def _script(self, hub: Hub) -> None:
        treasury = self.downstreams["treasury"]
        await self._until(self.timeline.down_at)
        await treasury.down()
        self.phase = "treasury down"
        self.say("treasury goes down for a release: its port is closed")
        await self._until(self.timeline.up_at)
        await treasury.up()
        self.phase = "treasury back"
        self.say("treasury is back up; the next probe will find it")
        await self._until(self.timeline.fix_at)
        self.downstreams["finance"].rejects.clear()
        self.say(f"finance reopens the account of {REJECTED_ORDER}")
        dead = await asyncio.to_thread(hub.deliveries, DeliveryFilter(status="dead"))
        for d in dead:
            await asyncio.to_thread(hub.repush_one, d.id, "demo")
            self.say(
                f"re-pushed delivery {d.id} ({d.flow} {d.key}), as you would with "
                f"`interlink repush {d.id}`"
            )
        self.phase = "draining"

    async def _until(self, second: float) -> None:
        await asyncio.sleep(max(0.0, self.started + second - time.monotonic()))

    async def _tick(self, hub: Hub) -> bool:
        """Refresh the picture; True when the demo is over."""
        await asyncio.sleep(0.25)
        self.status = await asyncio.to_thread(hub.status)
        events = await asyncio.to_thread(hub.events, 50)
        for event in sorted(events, key=lambda e: e["id"]):
            if event["id"] > self.last_event:
                self.last_event = event["id"]
                self.say(await asyncio.to_thread(describe, hub, event), at=event["at"])
        if self.elapsed() > self.timeline.cap:
            self.say(f"stopping at the {self.timeline.cap:.0f}s time cap")
            return True
        return not self.producing and self.settled()

    # -- what is shown --------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def count_submitted(self) -> int:
        return sum(len(ids) for ids in self.submitted.values())

    def expected(self, hub_flows: dict[str, Any]) -> int:
        return sum(len(self.submitted[f["document"]]) for f in hub_flows.values())

    def fan_out(self, hub_flows: dict[str, Any]) -> str:
        """How documents fan out to flows, in words: "each document goes to 2 flows"."""
        per_type: dict[str, int] = defaultdict(int)
        for f in hub_flows.values():
            per_type[f["document"]] += 1
        if len(set(per_type.values())) == 1:
            n = next(iter(per_type.values()))
            return f"each document goes to {n} flow{'s' if n != 1 else ''}"
        return "; ".join(f"each {t} goes to {n} flows" for t, n in sorted(per_type.items()))

    def delivered(self) -> int:
        return sum(f["delivered"] for f in self.status["flows"].values())

    def settled(self) -> bool:
        flows = self.status["flows"]
        busy = any(
            f["pending"] or f["in_flight"] or f["dead"] or any(f["held"].values())
            for f in flows.values()
        )
        return not busy and self.delivered() >= self.expected(flows)

    def say(self, message: str, at: str | None = None) -> None:
        when = datetime.fromisoformat(at).astimezone() if at else datetime.now().astimezone()
        line = f"{when:%H:%M:%S} {message}"
        self.log.append(line)
        if not self.live_mode:
            self.console.print(line, markup=False)

    def progress_line(self) -> str:
        held = sum(sum(f["held"].values()) for f in self.status["flows"].values())
        dead = sum(f["dead"] for f in self.status["flows"].values())
        due = self.expected(self.status["flows"])
        return (
            f"  t={self.elapsed():4.1f}s  {self.count_submitted()} documents submitted; "
            f"deliveries: {self.delivered()} of {due} delivered, {held} held, {dead} dead"
        )

    def render(self, with_log: bool = True) -> RenderableType:
        header = Text.assemble(
            ("Interlink demo", "bold"),
            f"   t={self.elapsed():4.1f}s   {self.phase}   submitted {self.count_submitted()}",
        )
        flows = Table(title="flows", title_justify="left", expand=False)
        for column, justify in (
            ("flow", "left"),
            ("pending", "right"),
            ("in flight", "right"),
            ("held", "left"),
            ("delivered", "right"),
            ("dead", "right"),
        ):
            flows.add_column(column, justify=justify)  # type: ignore[arg-type]
        for name, f in self.status["flows"].items():
            held = ", ".join(f"{n} {reason}" for reason, n in sorted(f["held"].items()) if n)
            flows.add_row(
                f"{name} → {f['to']}",
                str(f["pending"]),
                str(f["in_flight"]),
                Text(held or "0", style="yellow" if held else ""),
                Text(str(f["delivered"]), style="green"),
                Text(str(f["dead"]), style="red" if f["dead"] else ""),
            )
        systems = Table(title="circuits", title_justify="left")
        systems.add_column("system")
        systems.add_column("circuit")
        for name, s in self.status["systems"].items():
            if name == "trading":
                continue
            open_ = s["circuit"] == "open"
            systems.add_row(name, Text(s["circuit"], style="red" if open_ else "green"))
        if not with_log:
            return Group(header, flows, systems)
        log = Panel(Text("\n".join(self.log[-LOG_LINES:])), title="events", title_align="left")
        return Group(header, flows, systems, log)

    def summary(self) -> int:
        flows = self.status["flows"]
        submitted = self.count_submitted()
        expected = self.expected(flows)
        delivered = self.delivered()
        missing = 0
        for f in flows.values():
            received = self.downstreams[f["to"]].keys
            missing += len(set(self.submitted[f["document"]]) - received)
        lost = max(expected - delivered, missing)
        fan_out = self.fan_out(flows)
        treasury_order = self.downstreams["treasury"].out_of_order
        unordered = sum(
            d.out_of_order for name, d in self.downstreams.items() if name != "treasury"
        )
        self.console.print(
            f"{submitted} documents submitted; {fan_out}, so {expected} deliveries were due",
            markup=False,
        )
        self.console.print(
            f"order: the ordered flow to treasury delivered {treasury_order} refunds before "
            f"their payment; the unordered flows may deliver revisions in any order "
            f"({unordered} did, as allowed)",
            markup=False,
        )
        self.console.print(
            f"{submitted} documents submitted, {delivered} of {expected} deliveries "
            f"delivered, {lost} lost",
            markup=False,
        )
        return 0 if lost == 0 else 1


def describe(hub: Hub, event: dict[str, Any]) -> str:
    """One log line for an engine event."""
    kind, detail = event["kind"], event.get("detail") or {}
    system, flow = event.get("system"), event.get("flow")
    if kind == "circuit_opened":
        return f"{system} circuit opened ({detail.get('detail', '')}): its deliveries are held"
    if kind == "circuit_closed":
        return f"{system} circuit closed: the probe got through, the backlog drains"
    if kind in ("delivery_rejected", "delivery_gave_up"):
        key = "?"
        with contextlib.suppress(Exception):
            key = hub.delivery(int(detail["delivery"])).key
        verb = "rejected" if kind == "delivery_rejected" else "gave up on"
        return f"{system} {verb} {key}: {detail.get('detail', '')} (delivery {detail['delivery']})"
    return f"{kind} {flow or system or ''} {detail}".strip()


def run(fast: bool = False) -> int:
    """Run the demo; the exit code is 0 only if nothing was lost."""
    # Engine warnings would tear through the live table; the event log tells the story.
    logging.getLogger("interlink").setLevel(logging.ERROR)
    # Piped (make demo > log, the tests): whole lines rather than wrapped at 80 columns.
    tty = sys.stdout.isatty()
    # markup=False: keys and downstream messages in the log are data, never styles.
    console = Console(highlight=False, soft_wrap=not tty, width=None if tty else 120, markup=False)
    try:
        return runner.run(Demo(FAST if fast else NORMAL, console).run())
    except KeyboardInterrupt:
        console.print("demo interrupted")
        return 130
