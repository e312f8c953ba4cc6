"""Every row of the outcome table, end to end: intake → engine → real receiver → store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.utils import format_datetime

import pytest

from interlink.clock import FakeClock
from interlink.service import DeliveryFilter, Hub
from interlink.transports.base import Transport
from tests.conftest import (
    FINANCE_FLOW,
    HTTP_CLIENTS,
    TOPOLOGY,
    TREASURY_FLOW,
    delivery_of,
    pay,
    submit,
)
from tests.receiver import Receiver


@pytest.fixture(params=list(HTTP_CLIENTS))
def make_transport(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    """Every case on every HTTP client: a difference between them is a transport bug."""
    return HTTP_CLIENTS[request.param]


# -- 2xx and 409 --------------------------------------------------------------------------------


async def test_2xx_is_delivered_and_keeps_a_4kb_receipt(
    hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    receipt = "R" * 3000 + "S" * 3000
    treasury.respond(201, receipt, headers={"X-Receipt": "r-1"})
    [doc] = await submit(hub, pay("A1"))

    assert await hub.engine.drain() == 2

    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason, d.attempts, d.failures) == ("delivered", None, 1, 0)
    assert d.delivered_at == clock.now()
    assert d.last_error is None
    [attempt] = d.attempt_log
    assert (attempt.status_code, attempt.outcome, attempt.probe) == (201, "delivered", False)
    assert attempt.response == receipt[:4096]
    [seen] = treasury.requests
    assert seen.path == "/payments"
    assert seen.json == pay("A1")
    assert finance.requests[0].path == "/trades"
    assert hub.status()["flows"][TREASURY_FLOW]["delivered"] == 1


async def test_409_counts_as_delivered(hub: Hub, treasury: Receiver) -> None:
    treasury.respond(409, '{"error":"already have it"}')
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason, d.attempts) == ("delivered", None, 1)
    [attempt] = d.attempt_log
    assert (attempt.status_code, attempt.outcome) == (409, "duplicate")
    assert len(treasury.requests) == 1
    assert hub.status()["flows"][TREASURY_FLOW]["delivered"] == 1


async def test_an_answer_of_nul_bytes_and_bad_utf8_is_stored_readably(
    hub: Hub, treasury: Receiver
) -> None:
    # PostgreSQL's text type refuses NUL; the receipt must still be kept, not loop forever.
    treasury.respond(200, b"ok\x00\xff\xfe done")
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"])
    assert d.status == "delivered"
    assert d.attempt_log[-1].response == "ok\ufffd\ufffd\ufffd done"
    treasury.respond(422, b"bad\x00field")
    [doc] = await submit(hub, pay("A2"))
    await hub.engine.drain()
    d = delivery_of(hub, doc["id"])
    assert (d.status, d.last_error) == ("dead", "HTTP 422: bad\ufffdfield")


# -- unavailable: retry on schedule, then delivered ----------------------------------------------

Fault = Callable[[Receiver], Awaitable[None]]


async def _refuse(r: Receiver) -> None:
    await r.refuse()


def _status(code: int) -> Fault:
    async def fault(r: Receiver) -> None:
        r.respond(code, f"trouble {code}", times=1)

    return fault


async def _garbage(r: Receiver) -> None:
    r.garbage(times=1)


async def _cut_off(r: Receiver) -> None:
    r.cut_off(times=1)


UNAVAILABLE: dict[str, tuple[Fault, str]] = {
    "refused": (_refuse, "connection refused"),
    "garbage": (_garbage, "invalid HTTP response"),
    "reset": (_cut_off, "invalid HTTP response"),
    **{str(code): (_status(code), f"HTTP {code}") for code in (408, 425, 500, 502, 503, 504)},
}


@pytest.mark.parametrize("name", list(UNAVAILABLE))
async def test_unavailable_retries_on_schedule_then_delivers(
    name: str, hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    fault, detail = UNAVAILABLE[name]
    [doc] = await submit(hub, pay("A1"))
    t0 = clock.now()

    # Two failures in a row (below the circuit threshold of 3): 5 s, then 30 s.
    await fault(treasury)
    await hub.engine.step()
    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason, d.failures, d.attempts) == ("pending", None, 1, 1)
    assert d.next_at == t0 + timedelta(seconds=5)
    assert d.last_error == detail
    assert d.attempt_log[-1].outcome == "unavailable"
    assert delivery_of(hub, doc["id"], FINANCE_FLOW).status == "delivered"

    clock.advance(4)
    assert await hub.engine.step() == 0  # not due yet
    clock.advance(1)
    if name != "refused":
        await fault(treasury)
    assert await hub.engine.step() == 1
    d = delivery_of(hub, doc["id"])
    assert (d.status, d.failures, d.attempts) == ("pending", 2, 2)
    assert d.next_at == t0 + timedelta(seconds=35)

    # The receiver recovers.
    await treasury.accept()
    clock.advance(29)
    assert await hub.engine.step() == 0
    clock.advance(1)
    assert await hub.engine.drain() == 1
    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason, d.failures, d.attempts, d.last_error) == (
        "delivered",
        None,
        0,
        3,
        None,
    )
    assert [a.outcome for a in d.attempt_log] == ["unavailable", "unavailable", "delivered"]
    # Refused connections never reach the receiver; everything else did, under one key.
    expected = 1 if name == "refused" else 3
    assert treasury.keys() == [doc["id"]] * expected
    assert hub.status()["systems"]["treasury"]["circuit"] == "closed"


async def test_timeout_is_unavailable_and_retried(
    make_hub: Callable[[str], Hub], treasury: Receiver, clock: FakeClock
) -> None:
    hub = make_hub(TOPOLOGY.replace("timeout: 2s", "timeout: 300ms", 1))
    treasury.hang(3, times=1)
    [doc] = await submit(hub, pay("A1"))
    t0 = clock.now()

    await hub.engine.step()

    d = delivery_of(hub, doc["id"])
    assert (d.status, d.failures) == ("pending", 1)
    assert d.next_at == t0 + timedelta(seconds=5)
    assert d.last_error == "timed out"
    assert "no answer within 0.3s" in (d.attempt_log[0].response or "")
    clock.advance(5)
    await hub.engine.drain()
    assert delivery_of(hub, doc["id"]).status == "delivered"
    assert treasury.keys() == [doc["id"], doc["id"]]


# -- 429 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_429_waits_for_retry_after_and_throttles_the_flow(
    form: str, hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    t0 = clock.now()
    value = "60" if form == "seconds" else format_datetime(t0 + timedelta(seconds=60), usegmt=True)
    treasury.respond(429, "slow down", headers={"Retry-After": value}, times=1)
    [first] = await submit(hub, pay("A1"))

    await hub.engine.step()

    d = delivery_of(hub, first["id"])
    assert (d.status, d.last_error) == ("pending", "HTTP 429")
    assert d.next_at == t0 + timedelta(seconds=60)
    assert d.attempt_log[0].outcome == "throttled"

    # Meanwhile the flow is throttled: a new document waits, the other flow does not.
    [second] = await submit(hub, pay("A2"))
    clock.advance(59)
    await hub.engine.drain()
    assert len(treasury.requests) == 1
    assert delivery_of(hub, second["id"]).status == "pending"
    assert delivery_of(hub, second["id"], FINANCE_FLOW).status == "delivered"

    clock.advance(1)
    await hub.engine.drain()
    assert delivery_of(hub, first["id"]).status == "delivered"
    assert delivery_of(hub, second["id"]).status == "delivered"
    assert sorted(treasury.keys()[1:]) == sorted([first["id"], second["id"]])


async def test_429_without_retry_after_follows_the_schedule(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    treasury.respond(429, times=1)
    [doc] = await submit(hub, pay("A1"))
    t0 = clock.now()

    await hub.engine.step()

    d = delivery_of(hub, doc["id"])
    assert (d.status, d.failures) == ("pending", 1)
    assert d.next_at == t0 + timedelta(seconds=5)
    clock.advance(5)
    await hub.engine.drain()
    assert delivery_of(hub, doc["id"]).status == "delivered"


# -- 401 / 403 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403])
async def test_unauthorized_holds_the_delivery_and_the_flow(
    code: int, hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    # One delivery already waiting for a retry...
    treasury.respond(503, times=1)
    [waiting] = await submit(hub, pay("A0"))
    await hub.engine.step()
    assert delivery_of(hub, waiting["id"]).status == "pending"

    # ...then the downstream stops accepting our credentials.
    treasury.respond(code, "bad token", times=1)
    [doc] = await submit(hub, pay("A1"))
    await hub.engine.step()

    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason, d.last_error) == ("held", "auth", f"HTTP {code}")
    assert delivery_of(hub, waiting["id"]).state == "held: auth"
    status = hub.status()
    flow = status["flows"][TREASURY_FLOW]
    assert flow["hold"]["reason"] == "auth"
    assert flow["held"] == {"auth": 2}
    assert flow["pending"] == 0
    assert status["flows"][FINANCE_FLOW]["hold"] is None
    assert any(e["kind"] == "flow_held_auth" for e in hub.events())

    # New intake arrives held; nothing goes out on the flow, however long we wait.
    [later] = await submit(hub, pay("A2"))
    assert later["deliveries"][0] == {"flow": TREASURY_FLOW, "status": "held", "reason": "auth"}
    before = len(treasury.requests)
    clock.advance(3600)
    await hub.engine.drain()
    assert len(treasury.requests) == before
    assert delivery_of(hub, later["id"], FINANCE_FLOW).status == "delivered"

    result = hub.resume(TREASURY_FLOW, actor="ops")
    assert result["released"] == 3
    await hub.engine.drain()
    for one in (waiting, doc, later):
        assert delivery_of(hub, one["id"]).status == "delivered"
    assert hub.status()["flows"][TREASURY_FLOW]["hold"] is None
    assert set(treasury.keys()[before:]) == {waiting["id"], doc["id"], later["id"]}


# -- rejected -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [300, 301, 304, 400, 404, 413, 422])
async def test_rejected_is_dead_at_once_with_the_downstream_message(
    code: int, hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    message = "payee_account: not a valid IBAN"
    body = "" if code == 304 else f"  {message}\n"
    treasury.respond(code, body)
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason, d.attempts) == ("dead", "rejected", 1)
    assert d.last_error == (f"HTTP {code}" if code == 304 else f"HTTP {code}: {message}")
    assert d.attempt_log[0].outcome == "rejected"
    assert d.next_at is None
    clock.advance(timedelta(hours=2))
    await hub.engine.drain()
    assert len(treasury.requests) == 1
    assert hub.status()["flows"][TREASURY_FLOW]["dead"] == 1
    [event] = [e for e in hub.events() if e["kind"] == "delivery_rejected"]
    assert event["flow"] == TREASURY_FLOW
    dead = hub.deliveries(DeliveryFilter(flow=TREASURY_FLOW, status="dead", reason="rejected"))
    assert [x.id for x in dead] == [d.id]


@pytest.mark.parametrize("code", [302, 307])
async def test_redirect_with_location_is_rejected_not_followed(
    code: int, hub: Hub, treasury: Receiver
) -> None:
    treasury.respond(code, "moved", headers={"Location": "/elsewhere"}, times=1)
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    assert [r.path for r in treasury.requests] == ["/payments"]
    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason) == ("dead", "rejected")


# -- gave up --------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [503, 429])
async def test_retries_exhausted_past_give_up_after_is_dead_gave_up(
    code: int, make_hub: Callable[[str], Hub], treasury: Receiver, clock: FakeClock
) -> None:
    # A high circuit threshold, so that the retries run out before the circuit would open.
    hub = make_hub(TOPOLOGY.replace("circuit_threshold: 3", "circuit_threshold: 1000"))
    treasury.respond(code, "still down")
    [doc] = await submit(hub, pay("A1"))
    first = clock.now()

    for _ in range(100):
        await hub.engine.step()
        d = delivery_of(hub, doc["id"])
        if d.status != "pending":
            break
        assert d.next_at is not None
        assert d.next_at <= first + timedelta(hours=1)
        clock.set(d.next_at)

    d = delivery_of(hub, doc["id"])
    assert (d.status, d.reason) == ("dead", "gave_up")
    assert d.last_error == f"HTTP {code}"
    # Attempts at 0, 5 s, 35 s, then every 2 min while the next one is within the hour.
    expected = [0, 5, 35]
    while expected[-1] + 120 <= 3600:
        expected.append(expected[-1] + 120)
    assert [(a.started_at - first).total_seconds() for a in d.attempt_log] == expected
    assert d.attempts == len(expected) == len(treasury.requests)
    assert any(e["kind"] == "delivery_gave_up" for e in hub.events())
    clock.advance(timedelta(hours=3))
    assert await hub.engine.drain() == 0
