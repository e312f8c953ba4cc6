"""Property test of the delivery state machine (Hypothesis, stateful).

For any sequence of submissions, downstream answers, clock steps, engine steps, pauses,
resumes and re-pushes, on a real SQLite store:

- a delivery is never lost: every document keeps exactly one delivery per flow;
- no delivery is in two states at once: each has one status, and a reason exactly when the
  status calls for one (held: a hold reason, dead: a dead reason);
- held never spends retry budget: while a delivery stays held its failure count and its
  non-probe attempts do not grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import textwrap
from collections import deque
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select

from interlink.clock import FakeClock
from interlink.config import load
from interlink.errors import InputError, TransportError
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.model import DeadReason, HoldReason, Status
from interlink.service import DeliveryFilter, Hub
from interlink.store.schema import attempts, deliveries, documents
from interlink.transports.base import Request, Response

TOPOLOGY = """\
database: sqlite:///hub.db
systems:
  trading: {token_env: PROP_TOKEN}
  treasury: {url: "http://treasury.invalid", timeout: 1s}
  finance: {url: "http://finance.invalid", timeout: 1s}
documents:
  payment_order: {key: order_no}
flows:
  to-treasury: {from: trading, to: treasury, document: payment_order, ordered: true,
                retry: [5s, 30s], give_up_after: 2m}
  to-finance: {from: trading, to: finance, document: payment_order, retry: [5s], give_up_after: 1m}
engine: {circuit_threshold: 3, probe_interval: 10s, lease: 30s}
"""

ANSWERS = ["200", "409", "503", "429", "422", "401", "refused", "timeout"]


class ScriptedTransport:
    """Answers from a queue per system; 200 when the queue is empty."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[str]] = {"treasury": deque(), "finance": deque()}

    async def send(self, request: Request) -> Response:
        system = "treasury" if "treasury" in request.url else "finance"
        answer = self.queues[system].popleft() if self.queues[system] else "200"
        if answer in ("refused", "timeout"):
            raise TransportError(answer, answer)
        headers = {"Retry-After": "7"} if answer == "429" else {}
        return Response(status=int(answer), headers=headers, body=b"{}", elapsed_ms=1.0)

    async def close(self) -> None:
        return None


class DeliveryMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        path = Path(self.tmp.name) / "interlink.yaml"
        path.write_text(textwrap.dedent(TOPOLOGY))
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.transport = ScriptedTransport()
        self.hub = Hub(load(path), clock=self.clock, transport=self.transport, features=FEATURES)
        self.source = self.hub.topology.systems["trading"]
        self.held_budget: dict[int, tuple[int, int, str]] = {}
        self.submitted = 0

    def teardown(self) -> None:
        if hasattr(self, "hub"):
            self.loop.run_until_complete(self.hub.close())
            self.loop.close()
            self.tmp.cleanup()

    @rule(key=st.integers(0, 4), kind=st.sampled_from(["pay", "refund", "reverse"]))
    def submit(self, key: int, kind: str) -> None:
        item = Item("payment_order", {"order_no": f"K{key}", "kind": kind, "n": self.submitted})
        self.submitted += 1
        results = self.loop.run_until_complete(self.hub.intake.submit(self.source, [item]))
        assert isinstance(results[0], dict)

    @rule(
        system=st.sampled_from(["treasury", "finance"]),
        answers=st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=4),
    )
    def script(self, system: str, answers: list[str]) -> None:
        self.transport.queues[system].extend(answers)

    @rule(system=st.sampled_from(["treasury", "finance"]))
    def outage(self, system: str) -> None:
        """The downstream goes away for a while: enough failures to open its circuit."""
        self.transport.queues[system].extend(["refused"] * 8)
        self.loop.run_until_complete(self.hub.engine.step())
        for wait in (11, 21):  # probes go out, and fail, at backing-off intervals
            self.clock.advance(wait)
            self.loop.run_until_complete(self.hub.engine.step())

    @rule()
    def step(self) -> None:
        self.loop.run_until_complete(self.hub.engine.step())

    @rule(seconds=st.sampled_from([1, 5, 10, 31, 61, 150]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(flow=st.sampled_from(["to-treasury", "to-finance"]))
    def pause(self, flow: str) -> None:
        self.hub.pause(flow, actor="prop")

    @rule(flow=st.sampled_from(["to-treasury", "to-finance"]))
    def resume(self, flow: str) -> None:
        self.hub.resume(flow, actor="prop")

    @rule(status=st.sampled_from(["dead", "delivered"]))
    def repush(self, status: str) -> None:
        with contextlib.suppress(InputError):
            self.hub.repush(DeliveryFilter(status=status), actor="prop")

    @invariant()
    def never_lost_and_one_state(self) -> None:
        if not hasattr(self, "hub"):
            return

        def read(conn):
            docs = conn.execute(select(func.count()).select_from(documents)).scalar()
            rows = conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.document_id,
                    deliveries.c.flow,
                    deliveries.c.status,
                    deliveries.c.reason,
                    deliveries.c.failures,
                    deliveries.c.key,
                    deliveries.c.revision,
                )
            ).all()
            tries = dict(
                conn.execute(
                    select(attempts.c.delivery_id, func.count())
                    .where(attempts.c.probe.is_(False))
                    .group_by(attempts.c.delivery_id)
                ).all()
            )
            return docs, rows, tries

        docs, rows, tries = self.hub.store.read_sync(read)
        assert docs == self.submitted
        assert len(rows) == 2 * docs, "a delivery was lost or doubled"
        assert len({(r.document_id, r.flow) for r in rows}) == len(rows)
        holds = {h.value for h in HoldReason}
        deads = {d.value for d in DeadReason}
        for r in rows:
            assert r.status in {s.value for s in Status}
            if r.status == Status.HELD:
                assert r.reason in holds, r
            elif r.status == Status.DEAD:
                assert r.reason in deads, r
            else:
                assert r.reason is None, r
            # Nothing is in flight between engine steps: every lease was recorded.
            assert r.status != Status.IN_FLIGHT
        budget = {}
        for r in rows:
            now = (r.failures, tries.get(r.id, 0))
            before = self.held_budget.get(r.id)
            if r.status == Status.HELD and before is not None and before[2] == Status.HELD:
                # Held throughout (probes may have gone out meanwhile): neither its failures
                # nor its ordinary attempts grew.
                assert now == before[:2], f"held delivery {r.id} spent budget"
            budget[r.id] = (*now, r.status)
        self.held_budget = budget
        # Order per key on the ordered flow: of a key's revisions not yet delivered, only the
        # lowest may be anything but held: blocked (or waiting for a person, unmapped).
        by_key: dict[str, list[tuple[int, str, str | None]]] = {}
        for r in rows:
            if r.flow == "to-treasury" and r.status != Status.DELIVERED:
                by_key.setdefault(r.key, []).append((r.revision, r.status, r.reason))
        for key, revisions in by_key.items():
            for _revision, status, reason in sorted(revisions)[1:]:
                assert (status, reason) == (Status.HELD, HoldReason.BLOCKED), (key, revisions)


DeliveryMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDeliveryStateMachine = DeliveryMachine.TestCase
