"""Each fault of the sandbox downstream, shown on a real loopback server with a real client.

The timeline clock is injected (``now``), so moving in and out of a step takes no waiting;
what is real is the HTTP: refused connections, slow answers, hangs, cut-off bodies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from interlink.features.drills.sandbox import Sandbox
from interlink.features.drills.spec import FaultStep


class Timeline:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def sandbox() -> AsyncIterator[Callable[..., Any]]:
    made: list[Sandbox] = []
    clock = Timeline()

    async def make(*steps: dict[str, Any], timeout: float = 5.0) -> tuple[Sandbox, Timeline]:
        box = Sandbox(
            "treasury",
            [FaultStep.model_validate(s) for s in steps],
            timeout=timeout,
            now=clock,
        )
        await box.start()
        box.begin(0.0)
        await box.apply()
        made.append(box)
        return box, clock

    yield make
    for box in made:
        await box.stop()


async def post(
    box: Sandbox,
    payload: dict[str, Any] | None = None,
    key: str = "doc-1",
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], str]:
    headers = {"Idempotency-Key": key, "Interlink-Key": "PO-1", "Interlink-Revision": "1"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            box.url + "/payments",
            json=payload or {"order_no": "PO-1", "kind": "pay"},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response,
    ):
        return response.status, dict(response.headers), await response.text()


async def test_up_answers_200_and_books(sandbox: Callable[..., Any]) -> None:
    box, _ = await sandbox({"fault": "up"})
    status, _, body = await post(box)
    assert status == 200 and "doc-1" in body
    [got] = box.received
    assert (got.booked, got.key, got.revision, got.path) == (True, "PO-1", 1, "/payments")


async def test_down_refuses_connections_and_comes_back(sandbox: Callable[..., Any]) -> None:
    box, clock = await sandbox({"fault": "down", "at": "1s", "for": "2s"})
    assert (await post(box))[0] == 200
    clock.t = 1.5
    await box.apply()
    with pytest.raises(aiohttp.ClientConnectorError):
        await post(box)
    clock.t = 3.0
    await box.apply()
    assert (await post(box, key="doc-2"))[0] == 200
    assert [r.document_id for r in box.booked()] == ["doc-1", "doc-2"]


async def test_slow_adds_latency_with_jitter(sandbox: Callable[..., Any]) -> None:
    box, _ = await sandbox({"fault": "slow", "latency": "150ms", "jitter": "50ms"})
    started = time.monotonic()
    status, _, _ = await post(box)
    elapsed = time.monotonic() - started
    assert status == 200
    assert 0.15 <= elapsed < 1.0


async def test_timeout_hangs_past_the_systems_timeout(sandbox: Callable[..., Any]) -> None:
    box, _ = await sandbox({"fault": "timeout"}, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await post(box, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert box.received[0].booked is False


async def test_error_answers_5xx_at_its_rate(sandbox: Callable[..., Any]) -> None:
    box, _ = await sandbox({"fault": "error", "rate": 0.5, "status": 502})
    statuses = [(await post(box, key=f"d{i}"))[0] for i in range(40)]
    assert set(statuses) == {200, 502}
    assert 8 <= statuses.count(502) <= 32  # seeded: half, give or take


async def test_throttle_answers_429_with_retry_after(sandbox: Callable[..., Any]) -> None:
    box, _ = await sandbox({"fault": "throttle", "retry_after": "2s"})
    status, headers, _ = await post(box)
    assert status == 429
    assert headers["Retry-After"] == "2"
    assert box.booked() == []


async def test_reject_answers_422_only_for_matching_documents(
    sandbox: Callable[..., Any],
) -> None:
    box, _ = await sandbox(
        {"fault": "reject", "when": {"kind": "refund"}, "message": "refunds closed today"}
    )
    status, _, body = await post(box, {"order_no": "PO-1", "kind": "refund"})
    assert status == 422 and "refunds closed today" in body
    assert (await post(box, {"order_no": "PO-2", "kind": "pay"}, key="d2"))[0] == 200


async def test_ack_twice_books_then_fails_so_the_resend_is_a_duplicate(
    sandbox: Callable[..., Any],
) -> None:
    box, clock = await sandbox({"fault": "ack_twice", "for": "1s"})
    assert (await post(box))[0] == 500
    clock.t = 2.0
    assert (await post(box))[0] == 200  # the hub's re-send, same Idempotency-Key
    assert [r.document_id for r in box.duplicates()] == ["doc-1"]


async def test_cut_off_sends_headers_then_closes(sandbox: Callable[..., Any]) -> None:
    box, _ = await sandbox({"fault": "cut_off"})
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(box)
    assert box.received[0].booked is True


async def test_steps_apply_only_inside_their_period(sandbox: Callable[..., Any]) -> None:
    box, clock = await sandbox({"fault": "error", "at": "1s", "for": "1s"})
    assert (await post(box, key="a"))[0] == 200
    clock.t = 1.2
    assert (await post(box, key="b"))[0] == 503
    clock.t = 2.0
    assert (await post(box, key="c"))[0] == 200


async def test_a_request_waiting_when_down_begins_is_not_booked(
    sandbox: Callable[..., Any],
) -> None:
    box, clock = await sandbox(
        {"fault": "slow", "latency": "200ms"}, {"fault": "down", "at": "1s", "for": "1s"}
    )
    request = asyncio.create_task(post(box))
    while not box.received:
        await asyncio.sleep(0.01)  # until the request is inside the sandbox, waiting
    clock.t = 1.0  # down begins while it waits
    with pytest.raises(aiohttp.ClientError):
        await request
    assert box.booked() == []
