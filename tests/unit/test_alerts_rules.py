"""Routing by role and aggregation: pure, table-driven, with an injected time."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlink.config import Topology, loads
from interlink.features.alerts.rules import RULES, Aggregator, Event, Message, action, route

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)

TOPOLOGY = """\
systems:
  trading:
    contacts:
      - {role: product, email: trading-pm@x.test}
      - {role: dev, email: trading-dev@x.test, notify: "json://127.0.0.1:1/"}
      - {role: ops, email: trading-ops@x.test}
      - {role: business, email: trading-biz@x.test}
  shop:
    contacts:
      - {role: dev, email: shop-dev@x.test}
      - {role: product, email: shop-pm@x.test}
  treasury:
    url: http://127.0.0.1:9
    contacts:
      - {role: ops, email: treasury-ops@x.test}
      - {role: dev, email: treasury-dev@x.test}
      - {role: product, email: treasury-pm@x.test}
  finance:
    url: http://127.0.0.1:9
    contacts:
      - {role: ops, email: finance-ops@x.test}
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order}
  shop-treasury: {from: shop, to: treasury, document: payment_order}
  trading-finance: {from: trading, to: finance, document: payment_order}
"""


@pytest.fixture(scope="module")
def topology() -> Topology:
    return loads(textwrap.dedent(TOPOLOGY), str(Path("/tmp/interlink.yaml")))


def ev(
    kind: str, system: str | None = None, flow: str | None = None, n: int = 1, **detail: object
) -> Event:
    return Event(n, T0, kind, system, flow, dict(detail))


def emails(event: Event, topology: Topology) -> set[str]:
    return {r.email for r in route(event, topology) if r.email}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        # downstream down or back: dev and ops of the downstream and of every upstream into it
        (
            ev("circuit_opened", "treasury"),
            {"treasury-ops@x.test", "treasury-dev@x.test", "trading-dev@x.test",
             "trading-ops@x.test", "shop-dev@x.test"},
        ),
        (ev("circuit_closed", "finance"), {"finance-ops@x.test", "trading-dev@x.test",
                                           "trading-ops@x.test"}),
        # throttling on a flow: dev and ops of its two ends
        (ev("flow_throttled", "treasury", "shop-treasury"),
         {"treasury-ops@x.test", "treasury-dev@x.test", "shop-dev@x.test"}),
        # rejected data or unmapped scenario: product and dev of the upstream
        (ev("delivery_rejected", "treasury", "trading-treasury"),
         {"trading-pm@x.test", "trading-dev@x.test"}),
        (ev("document_unmapped", "treasury", "shop-treasury"),
         {"shop-pm@x.test", "shop-dev@x.test"}),
        # unauthorized: ops of the downstream
        (ev("flow_held_auth", "treasury", "trading-treasury"), {"treasury-ops@x.test"}),
        # deadlines: everyone on the flow
        (
            ev("deadline_missed", "finance", "trading-finance"),
            {"finance-ops@x.test", "trading-pm@x.test", "trading-dev@x.test",
             "trading-ops@x.test", "trading-biz@x.test"},
        ),
        (ev("delivery_gave_up", "finance", "trading-finance"),
         {"finance-ops@x.test", "trading-dev@x.test", "trading-ops@x.test"}),
        # maintenance: the system's contacts and every upstream's
        (
            ev("maintenance_announced", "finance"),
            {"finance-ops@x.test", "trading-pm@x.test", "trading-dev@x.test",
             "trading-ops@x.test", "trading-biz@x.test"},
        ),
        (ev("contract_published", systems=["shop"]), {"shop-dev@x.test", "shop-pm@x.test"}),
        (ev("something_new", "treasury"), set()),
    ],
)  # fmt: skip
def test_routing_by_role(event: Event, expected: set[str], topology: Topology) -> None:
    assert emails(event, topology) == expected


def test_routing_keeps_chat_urls_once(topology: Topology) -> None:
    found = route(ev("circuit_opened", "finance"), topology)
    assert [r.notify for r in found if r.notify] == ["json://127.0.0.1:1/"]


def test_every_rule_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    for kind in RULES:
        assert f"`{kind}`" in docs, kind


def test_first_is_sent_at_once_then_folded_into_one_summary() -> None:
    agg = Aggregator(timedelta(minutes=5))
    flow = "trading-treasury"
    first = agg.feed([ev("delivery_rejected", "treasury", flow, n=1, detail="HTTP 422: bad")], T0)
    assert [(m.count, m.summary) for m in first] == [(1, False)]
    flood = [ev("delivery_rejected", "treasury", flow, n=i) for i in range(2, 10_002)]
    assert agg.feed(flood, T0 + timedelta(seconds=10)) == []
    assert agg.feed([], T0 + timedelta(minutes=4, seconds=59)) == []
    [summary] = agg.feed([], T0 + timedelta(minutes=5))
    assert (summary.count, summary.summary, len(summary.examples)) == (10_000, True, 5)
    assert "10000 more" in summary.subject()
    assert "interlink repush --flow trading-treasury --reason rejected --dry-run" in summary.body()
    # a quiet interval closes the problem; the next event goes out at once again
    assert agg.feed([], T0 + timedelta(minutes=10)) == []
    assert agg.buckets == {}
    again = agg.feed([ev("delivery_rejected", "treasury", flow, n=20_000)], T0 + timedelta(hours=1))
    assert [m.summary for m in again] == [False]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # distinct flows are distinct problems
        ([("delivery_rejected", "trading-treasury"), ("delivery_rejected", "shop-treasury")], 2),
        # distinct rules on one flow too
        ([("delivery_rejected", "trading-treasury"), ("delivery_gave_up", "trading-treasury")], 2),
        # the same problem folds
        ([("delivery_rejected", "trading-treasury")] * 3, 1),
        # maintenance is never folded
        ([("maintenance_started", None)] * 3, 3),
    ],
)
def test_aggregation_keys(events: list[tuple[str, str | None]], expected: int) -> None:
    agg = Aggregator(timedelta(minutes=5))
    batch = [ev(kind, "treasury", flow, n=i) for i, (kind, flow) in enumerate(events)]
    assert len(agg.feed(batch, T0)) == expected


def test_state_survives_a_restart() -> None:
    agg = Aggregator(timedelta(minutes=5))
    flow = "trading-treasury"
    agg.feed([ev("delivery_rejected", "treasury", flow, n=i) for i in range(4)], T0)
    restored = Aggregator.load(timedelta(minutes=5), agg.dump())
    [summary] = restored.feed([], T0 + timedelta(minutes=5))
    assert summary.count == 3 and [e.id for e in summary.examples] == [1, 2, 3]
    assert Aggregator.load(timedelta(minutes=5), "not json").buckets == {}


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("delivery_rejected", "interlink repush --flow F --reason rejected --dry-run"),
        ("delivery_gave_up", "interlink repush --flow F --reason gave_up --dry-run"),
        ("flow_held_auth", "interlink flows resume F"),
        ("maintenance_started", ""),
    ],
)
def test_the_command_that_acts(kind: str, command: str) -> None:
    assert action(ev(kind, "treasury", "F")) == command


def test_message_names_documents_and_detail() -> None:
    event = ev("delivery_rejected", "treasury", "F", n=7, delivery=42, detail="HTTP 422: no payee")
    body = Message("delivery_rejected", "treasury", "F", 1, [event]).body(
        refs={42: ("PO-1", "01DOC")}
    )
    assert "key PO-1 (delivery 42, document 01DOC): HTTP 422: no payee" in body
    notice = ev("maintenance_started", "treasury", None, window=3, reason="upgrade")
    text = Message("maintenance_started", "treasury", None, 1, [notice]).body()
    assert text.startswith("treasury is in maintenance (upgrade).")
