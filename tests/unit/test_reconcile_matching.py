"""The reconciliation matcher, table-tested: every category, tolerance, currency, revisions,
timing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from interlink.features.reconcile.matching import (
    AFTER_PERIOD,
    BEFORE_PERIOD,
    Ours,
    Rules,
    Theirs,
    match_key,
    parse_amount,
)

D = Decimal
STATUS = {"payment": "PAID", "refund": "REFUNDED"}


def ours(
    rev: int = 1,
    amount: str = "10.00",
    status: str | None = "payment",
    currency: str | None = None,
    late: bool = False,
    delivery: str = "delivered",
) -> Ours:
    return Ours("K1", rev, D(amount), status, currency, 7, delivery, late)


def theirs(
    rev: int | None = None,
    amount: str = "10.00",
    status: str | None = "PAID",
    currency: str | None = None,
    line: int = 2,
    period: int = 0,
) -> Theirs:
    return Theirs("K1", rev, D(amount), status, currency, line, period)


def categories(
    o: list[Ours], t: list[Theirs], tolerance: str = "0", by_revision: bool = False
) -> list[str]:
    items, _, _ = match_key("K1", o, t, Rules(D(tolerance), STATUS, by_revision))
    return sorted(i.category for i in items)


CASES = [
    # (name, ours, theirs, tolerance, by_revision, expected categories)
    ("equal", [ours()], [theirs()], "0", False, []),
    ("missing", [ours()], [], "0", False, ["missing"]),
    ("missing, not yet delivered", [ours(delivery="dead")], [], "0", False, ["missing"]),
    ("extra", [], [theirs()], "0", False, ["extra"]),
    ("amount off", [ours()], [theirs(amount="10.50")], "0", False, ["amount_mismatch"]),
    ("within tolerance", [ours()], [theirs(amount="10.01")], "0.01", False, []),
    ("just over tolerance", [ours()], [theirs(amount="10.02")], "0.01", False, ["amount_mismatch"]),
    ("same number, other scale", [ours(amount="10")], [theirs(amount="10.000")], "0", False, []),
    (
        "other currency, same number",
        [ours(currency="CNY")],
        [theirs(currency="USD")],
        "0",
        False,
        ["amount_mismatch"],
    ),
    ("currency case", [ours(currency="cny")], [theirs(currency="CNY")], "0", False, []),
    (
        "refund booked as payment",
        [ours(status="refund")],
        [theirs()],
        "0",
        False,
        ["status_mismatch"],
    ),
    ("status case", [ours()], [theirs(status="paid")], "0", False, []),
    ("unmapped status compared as is", [ours(status="PAID")], [theirs()], "0", False, []),
    (
        "amount and status off",
        [ours(status="refund")],
        [theirs(amount="1")],
        "0",
        False,
        ["amount_mismatch", "status_mismatch"],
    ),
    ("duplicate", [ours()], [theirs(), theirs(line=3)], "0", False, ["duplicate"]),
    ("duplicate extra", [], [theirs(), theirs(line=3)], "0", False, ["duplicate", "extra"]),
    ("latest revision wins", [ours(1, "10"), ours(2, "12")], [theirs(amount="12")], "0", False, []),
    (
        "older revision booked",
        [ours(1, "10"), ours(2, "12")],
        [theirs(amount="10")],
        "0",
        False,
        ["amount_mismatch"],
    ),
    ("by revision: both there", [ours(1), ours(2)], [theirs(1), theirs(2)], "0", True, []),
    ("by revision: second missing", [ours(1), ours(2)], [theirs(1)], "0", True, ["missing"]),
    ("by revision: unknown revision", [ours(1)], [theirs(1), theirs(3)], "0", True, ["extra"]),
    (
        "by revision: same revision twice",
        [ours(1)],
        [theirs(1), theirs(1, line=4)],
        "0",
        True,
        ["duplicate"],
    ),
    ("delivered late, in their records", [ours(late=True)], [theirs()], "0", False, ["timing"]),
    ("delivered late, not there yet", [ours(late=True)], [], "0", False, ["timing"]),
    ("booked the next period", [ours()], [theirs(period=AFTER_PERIOD)], "0", False, ["timing"]),
    ("booked the period before", [ours()], [theirs(period=BEFORE_PERIOD)], "0", False, ["timing"]),
    ("theirs of another period, not ours", [], [theirs(period=AFTER_PERIOD)], "0", False, []),
    (
        "late and amount off",
        [ours(late=True)],
        [theirs(amount="9")],
        "0",
        False,
        ["amount_mismatch", "timing"],
    ),
]


@pytest.mark.parametrize(
    ("o", "t", "tolerance", "by_revision", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_categories(
    o: list[Ours], t: list[Theirs], tolerance: str, by_revision: bool, expected: list[str]
) -> None:
    assert categories(o, t, tolerance, by_revision) == expected


def test_counted_sides_for_totals() -> None:
    _, compared, counted = match_key(
        "K1",
        [ours(1, "10"), ours(2, "12")],
        [theirs(amount="12"), theirs(amount="12", line=3, period=AFTER_PERIOD)],
        Rules(D(0), STATUS, False),
    )
    assert [o.revision for o in compared] == [2]  # the latest revision only
    assert [t.line for t in counted] == [2]  # rows of another period are not counted


def test_items_say_what_and_where() -> None:
    items, _, _ = match_key(
        "K1", [ours()], [theirs(amount="10.50", line=9)], Rules(status_map=STATUS)
    )
    [item] = items
    body = item.to_json()
    assert body["ours_amount"] == "10.00" and body["theirs_amount"] == "10.50"
    assert body["line"] == 9 and body["delivery_id"] == 7
    assert "+0.50" in body["detail"]


AMOUNTS = [
    ("12", D("12")),
    ("12.50", D("12.50")),
    (" 1,234.50 ", D("1234.50")),
    ("¥1,234.50", D("1234.50")),
    ("￥8", D("8")),
    ("$0.10", D("0.10")),
    ("-3.5", D("-3.5")),
    ("-¥3.5", D("-3.5")),
    ("(12.00)", D("-12.00")),
    ("1e3", D("1e3")),
    (7, D(7)),
    (0.1, D("0.1")),
    (D("2.25"), D("2.25")),
]


@pytest.mark.parametrize(("raw", "expected"), AMOUNTS, ids=[repr(a[0]) for a in AMOUNTS])
def test_parse_amount(raw: object, expected: Decimal) -> None:
    value = parse_amount(raw)
    assert value == expected and isinstance(value, Decimal)


@pytest.mark.parametrize("raw", ["", "abc", "1,23", "12.3.4", "NaN", "Infinity", "--1", True])
def test_parse_amount_refuses(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_amount(raw)
