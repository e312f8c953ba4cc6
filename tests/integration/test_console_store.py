"""The console's named queries on a real store: the attempt-id floor found by bisection,
attempts per hour by outcome, delivered since, and paging deliveries by id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from interlink.service import Hub
from interlink.store import console as sql
from interlink.store import schema
from interlink.store.queries import deliveries
from interlink.store.schema import attempts

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def delivery(i: int, flow: str, status: str = "delivered", key: str | None = None) -> dict:
    return {
        "id": i,
        "document_id": f"D{i}",
        "flow": flow,
        "system": "treasury",
        "key": key or f"K{i}",
        "revision": 1,
        "status": status,
        "reason": "rejected" if status == "dead" else None,
        "attempts": 1,
        "failures": 0,
        "probe": False,
        "created_at": T0,
        "updated_at": T0 + timedelta(minutes=i),
    }


def attempt(delivery_id: int, at: datetime, outcome: str) -> dict:
    return {
        "delivery_id": delivery_id,
        "started_at": at,
        "elapsed_ms": 1.0,
        "status_code": 200,
        "outcome": outcome,
        "detail": "",
        "probe": False,
    }


def fill(hub: Hub, rows: list[dict], tries: list[dict]) -> None:
    def write(conn: Connection) -> None:
        conn.execute(schema.deliveries.insert(), rows)
        if tries:
            conn.execute(attempts.insert(), tries)

    hub.store.write_sync(write)


def read(hub: Hub, fn: Any) -> Any:
    return hub.store.read_sync(fn)


async def test_floor_hourly_and_delivered_since(hub: Hub) -> None:
    assert read(hub, lambda c: sql.first_attempt_id_since(c, T0)) is None  # no attempts
    rows = [delivery(i, "a" if i % 2 else "b") for i in range(1, 11)]
    # attempt i starts at T0 + i hours; attempt 7 was recorded late (starts 20 min earlier)
    starts = {i: T0 + timedelta(hours=i) for i in range(1, 11)}
    starts[7] = starts[6] - timedelta(minutes=20)
    outcomes = {i: "rejected" if i in (3, 5) else "delivered" for i in range(1, 11)}
    fill(hub, rows, [attempt(i, starts[i], outcomes[i]) for i in range(1, 11)])

    floor = lambda at: read(hub, lambda c: sql.first_attempt_id_since(c, at))  # noqa: E731
    assert floor(T0) == 1
    assert floor(T0 + timedelta(hours=5)) == 4  # an hour of slack before 05:00
    assert floor(T0 + timedelta(hours=10, minutes=30)) == 10
    assert floor(T0 + timedelta(hours=12)) is None  # the newest is older than since - slack

    hourly = read(hub, lambda c: sql.hourly_outcomes(c, "a", T0 + timedelta(hours=3)))
    assert hourly == {
        T0 + timedelta(hours=3): {"rejected": 1},
        T0 + timedelta(hours=5): {"rejected": 1, "delivered": 1},  # 5 and the late 7
        T0 + timedelta(hours=9): {"delivered": 1},
    }
    done = read(hub, lambda c: sql.delivered_since(c, T0 + timedelta(hours=6)))
    assert done == {"b": 3, "a": 1}  # b: 6, 8, 10; a: 9 (7 started before 06:00)


async def test_delivery_pages_by_cursor_and_filter(hub: Hub) -> None:
    rows = [delivery(i, "a", "dead" if i % 3 == 0 else "delivered") for i in range(1, 31)]
    rows += [delivery(100 + i, "b") for i in range(5)]
    rows[4]["key"] = "SPECIAL"
    fill(hub, rows, [])

    page = lambda **kw: read(  # noqa: E731
        hub, lambda c: deliveries.page_delivery_ids(c, **{"flow": "a", "limit": 5, **kw})
    )
    assert page() == [30, 29, 28, 27, 26]
    assert page(before=26) == [25, 24, 23, 22, 21]
    assert page(before=3) == [2, 1]
    assert page(status="dead") == [30, 27, 24, 21, 18]
    assert page(status="dead", before=18) == [15, 12, 9, 6, 3]
    assert page(status="dead", reason="rejected", before=4) == [3]
    assert page(status="held") == []
    assert page(key="SPECIAL") == [5]
    assert page(since=T0 + timedelta(minutes=28)) == [30, 29, 28]
    assert page(until=T0 + timedelta(minutes=2)) == [1]
    # Across flows (the API's listing), and by key in any flow.
    assert page(flow=None) == [104, 103, 102, 101, 100]
    assert page(flow=None, key="SPECIAL") == [5]
    assert [
        d.id for d in read(hub, lambda c: deliveries.list_deliveries(c, before=3, flow="a"))
    ] == [2, 1]
