"""Claims between full claims: new work is leased without re-reading what cannot have moved,
and anything else (a pause, a window, time passing) makes the next claim a full one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from interlink.clock import FakeClock
from interlink.engine.loop import HOUSEKEEP_EVERY
from interlink.service import Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, pay, submit

WANT = {TREASURY_FLOW: 10, FINANCE_FLOW: 10}


def count_housekeeping(hub: Hub) -> list[datetime]:
    runs: list[datetime] = []

    def housekeeper(conn: Connection, now: datetime) -> None:
        runs.append(now)

    hub.hooks.housekeepers.append(housekeeper)
    return runs


async def test_new_work_is_leased_without_housekeeping(hub: Hub, clock: FakeClock) -> None:
    runs = count_housekeeping(hub)
    engine = hub.engine
    await submit(hub, pay("H1"))
    assert len(await engine.claim(WANT)) == 2
    assert len(runs) == 1  # the first claim is a full one

    await submit(hub, pay("H2"))
    engine.wake(new_work=True)
    assert len(await engine.claim(WANT)) == 2  # leased at once...
    assert len(runs) == 1  # ...without the housekeepers

    clock.advance(HOUSEKEEP_EVERY)
    assert await engine.claim(WANT) == []
    assert len(runs) == 2  # time passed: a full claim


async def test_a_change_makes_the_next_claim_full(hub: Hub, clock: FakeClock) -> None:
    runs = count_housekeeping(hub)
    engine = hub.engine
    await engine.claim(WANT)
    assert len(runs) == 1
    hub.pause(TREASURY_FLOW, "ops")  # not new work: circuits and holds may have moved
    await submit(hub, pay("H3"))
    jobs = await engine.claim(WANT)
    assert len(runs) == 2
    assert [job.flow.name for job in jobs] == [FINANCE_FLOW]  # the pause was read

    # A claim without a wish (step, drain) is always a full one.
    await engine.claim()
    assert len(runs) == 3


async def test_a_clock_set_back_makes_the_next_claim_full(hub: Hub, clock: FakeClock) -> None:
    runs = count_housekeeping(hub)
    engine = hub.engine
    await engine.claim(WANT)
    clock.advance(-timedelta(milliseconds=1))
    await engine.claim(WANT)
    assert len(runs) == 2
