"""Zero loss under faults: 300 documents, two flows, receivers that flap, revisions in order."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from interlink.clock import FakeClock
from interlink.service import DeliveryFilter, Hub
from tests.conftest import FINANCE_FLOW, TOPOLOGY, TREASURY_FLOW, header, pay, submit
from tests.receiver import Received, Receiver


class _Garbage(web.Response):
    """Bytes that are not HTTP, then a closed connection."""

    async def prepare(self, request: web.BaseRequest) -> None:
        if request.transport is not None:
            request.transport.write(b"NOT HTTP\r\n\r\n")
            request.transport.close()
        await super().prepare(request)


@dataclass
class Flapper:
    """Answers 503 / garbage / 429 Retry-After: 1 / 200 in a seeded pattern; 409 once it has it."""

    seed: int
    answers: list[tuple[str, int]] = field(default_factory=list)
    """(Idempotency-Key, status) per request, in arrival order; 0 for garbage."""
    accepted: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def __call__(self, received: Received) -> web.StreamResponse:
        key = header(received, "Idempotency-Key") or ""
        roll = self.rng.random()
        if roll < 0.15:
            status = 503
        elif roll < 0.25:
            status = 0
        elif roll < 0.35:
            status = 429
        else:
            status = 409 if key in self.accepted else 200
        self.answers.append((key, status))
        if status == 0:
            return _Garbage()
        if status == 429:
            return web.Response(status=429, headers={"Retry-After": "1"})
        if status in (200, 409):
            self.accepted.add(key)
        return web.Response(status=status, text="ok" if status == 200 else "busy")


def documents() -> list[dict[str, str]]:
    """300 payment orders: 200 keys, 70 of them with a 2nd revision and 30 with a 3rd."""
    docs = [pay(f"K{n:03}", amount="1.00") for n in range(200)]
    docs += [pay(f"K{n:03}", amount="2.00", kind="refund") for n in range(70)]
    docs += [pay(f"K{n:03}", amount="3.00") for n in range(30)]
    random.Random(7).shuffle(docs)
    # Shuffled, but each key's revisions keep their order of submission.
    order: dict[str, list[dict[str, str]]] = defaultdict(list)
    for d in sorted(docs, key=lambda d: d["amount"]):
        order[d["order_no"]].append(d)
    return [order[d["order_no"]].pop(0) for d in docs]


async def test_nothing_is_lost_while_receivers_flap(
    make_hub: Callable[[str], Hub],
    treasury: Receiver,
    finance: Receiver,
    clock: FakeClock,
) -> None:
    hub = make_hub(TOPOLOGY.replace("give_up_after: 1h", "give_up_after: 48h"))
    flappers = {TREASURY_FLOW: Flapper(seed=11), FINANCE_FLOW: Flapper(seed=23)}
    treasury.respond_with(flappers[TREASURY_FLOW])
    finance.respond_with(flappers[FINANCE_FLOW])

    docs = documents()
    ids: dict[tuple[str, int], str] = {}
    for start in range(0, len(docs), 50):
        # Intake keeps coming while deliveries fail and retry.
        for result in await submit(hub, *docs[start : start + 50]):
            ids[(result["key"], result["revision"])] = result["id"]
        await hub.engine.step()
        clock.advance(1)
    assert len(ids) == 300

    for _ in range(3000):
        if await hub.engine.step():
            continue
        flows = hub.status()["flows"].values()
        if not any(f["pending"] or f["in_flight"] or f["held"] for f in flows):
            break
        clock.advance(5)

    status = hub.status()
    for name in (TREASURY_FLOW, FINANCE_FLOW):
        flow = status["flows"][name]
        assert (flow["delivered"], flow["pending"], flow["held"], flow["dead"]) == (
            300,
            0,
            {},
            0,
        ), (
            name,
            status["systems"],
        )
    assert len(hub.deliveries(DeliveryFilter(status="delivered"), limit=1000)) == 600

    by_id = {doc_id: kr for kr, doc_id in ids.items()}
    for name, receiver in ((TREASURY_FLOW, treasury), (FINANCE_FLOW, finance)):
        flapper = flappers[name]
        # Every document reached the receiver with a 2xx (or was already there: 409).
        ok = {key for key, code in flapper.answers if code in (200, 409)}
        assert ok == set(by_id)
        assert Counter(code for _, code in flapper.answers if code == 200)[200] == 300
        # Repeats only under a repeated Idempotency-Key: one key, one body, one revision.
        bodies: dict[str, bytes] = {}
        for r in receiver.requests:
            key = header(r, "Idempotency-Key") or ""
            assert bodies.setdefault(key, r.body) == r.body
            assert (header(r, "Interlink-Key"), int(header(r, "Interlink-Revision") or 0)) == (
                by_id[key]
            )
        assert len(bodies) == 300

    # On the ordered flow, a revision is only ever sent once its predecessor was accepted.
    accepted: set[tuple[str, int]] = set()
    for key, code in flappers[TREASURY_FLOW].answers:
        doc_key, revision = by_id[key]
        assert revision == 1 or (doc_key, revision - 1) in accepted, (doc_key, revision)
        if code in (200, 409):
            accepted.add((doc_key, revision))
    events = {e["kind"] for e in hub.events(limit=1000)}
    assert "delivery_gave_up" not in events
