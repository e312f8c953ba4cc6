"""The reconciliation matcher: pure functions over plain records, no I/O.

:func:`match_key` compares everything Interlink holds for one business key against every row
the downstream has for it and returns the differences. The run streams both sides sorted by
key and calls it once per key, so memory stays bounded by the largest key group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

CATEGORIES = ("missing", "extra", "amount_mismatch", "status_mismatch", "duplicate", "timing")
# Categories that count as differences (exit 1); timing differences are reported apart.
ERRORS = frozenset(CATEGORIES) - {"timing"}

# Where a downstream row is dated relative to the period.
IN_PERIOD, BEFORE_PERIOD, AFTER_PERIOD = 0, -1, 1

_SYMBOLS = "¥￥$€£"
_AMOUNT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


@dataclass(frozen=True, slots=True)
class Ours:
    """One delivery Interlink made (or should have made) in the period."""

    key: str
    revision: int
    amount: Decimal | None
    status: str | None  # our scenario or payload kind
    currency: str | None = None
    delivery_id: int | None = None
    delivery_status: str = "delivered"
    late: bool = False  # delivered after the period's cut-off


@dataclass(frozen=True, slots=True)
class Theirs:
    """One row of the downstream's records."""

    key: str
    revision: int | None
    amount: Decimal | None
    status: str | None
    currency: str | None = None
    line: int = 0
    period: int = IN_PERIOD


@dataclass(frozen=True)
class Rules:
    tolerance: Decimal = Decimal(0)
    status_map: dict[str, str] = field(default_factory=dict)
    by_revision: bool = False  # the export has a revision column


@dataclass(slots=True)
class Item:
    category: str
    key: str
    revision: int | None = None
    ours_amount: Decimal | None = None
    theirs_amount: Decimal | None = None
    ours_status: str | None = None
    theirs_status: str | None = None
    detail: str = ""
    line: int | None = None
    delivery_id: int | None = None
    delivery_status: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "key": self.key,
            "revision": self.revision,
            "ours_amount": _text(self.ours_amount),
            "theirs_amount": _text(self.theirs_amount),
            "ours_status": self.ours_status,
            "theirs_status": self.theirs_status,
            "detail": self.detail,
            "line": self.line,
            "delivery_id": self.delivery_id,
            "delivery_status": self.delivery_status,
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def parse_amount(value: Any) -> Decimal:
    """A decimal from what an export holds: ``1234.5``, ``"1,234.50"``, ``"¥1,234.50"``,
    ``"(12.00)"`` (a negative), ``"-12"``. Never goes through a float unless the cell already
    was one (XLSX numbers), and then through its shortest text. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not an amount")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return parse_amount(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an amount")
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if len(text) > 1 and text[0] in "+-" and text[1] in _SYMBOLS:
        text = text[0] + text[2:]
    text = text.lstrip(_SYMBOLS)
    if "," in text:
        if not _GROUPED.fullmatch(text):
            raise ValueError(f"{value!r} is not an amount")
        text = text.replace(",", "")
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"{value!r} is not an amount")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    return -amount if negative else amount


def expected_status(ours: str | None, status_map: dict[str, str]) -> str | None:
    """What the downstream should have recorded for our scenario or kind."""
    if ours is None:
        return None
    return status_map.get(ours, ours)


def compare(ours: Ours, theirs: Theirs, rules: Rules) -> list[Item]:
    """Amount (with tolerance and currency) and status of one matched pair."""
    currency_differs = bool(
        ours.currency and theirs.currency and ours.currency.upper() != theirs.currency.upper()
    )
    amount_differs = (
        not currency_differs
        and ours.amount is not None
        and theirs.amount is not None
        and abs(theirs.amount - ours.amount) > rules.tolerance
    )
    expected = expected_status(ours.status, rules.status_map)
    status_differs = (
        expected is not None
        and theirs.status is not None
        and expected.casefold() != theirs.status.casefold()
    )
    if not (currency_differs or amount_differs or status_differs):
        return []
    items: list[Item] = []

    def item(category: str, detail: str, **extra: Any) -> Item:
        return _about(
            ours, category, detail, theirs_amount=theirs.amount, line=theirs.line, **extra
        )

    if currency_differs:
        items.append(
            item(
                "amount_mismatch",
                f"currency {ours.currency} sent, {theirs.currency} recorded",
                ours_status=ours.currency,
                theirs_status=theirs.currency,
            )
        )
    elif amount_differs:
        assert ours.amount is not None and theirs.amount is not None
        items.append(
            item(
                "amount_mismatch", f"recorded {theirs.amount - ours.amount:+} against what was sent"
            )
        )
    if status_differs:
        items.append(
            item(
                "status_mismatch",
                f"expected {expected!r}, recorded {theirs.status!r}",
                ours_status=ours.status,
                theirs_status=theirs.status,
            )
        )
    return items


def _about(ours: Ours, category: str, detail: str, **extra: Any) -> Item:
    """An item on one of our deliveries: its key, revision, amount and delivery."""
    return Item(
        category,
        ours.key,
        ours.revision,
        ours_amount=ours.amount,
        detail=detail,
        delivery_id=ours.delivery_id,
        delivery_status=ours.delivery_status,
        **extra,
    )


def _missing(ours: Ours) -> Item:
    if ours.late:
        detail = "delivered after the cut-off; expect it in their next period"
        return _about(ours, "timing", detail, ours_status=ours.status)
    if ours.delivery_status == "delivered":
        detail = "delivered, not in their records"
    else:
        detail = f"not in their records; our delivery is {ours.delivery_status}"
    return _about(ours, "missing", detail, ours_status=ours.status)


def _extra(row: Theirs) -> Item:
    return Item(
        "extra",
        row.key,
        row.revision,
        theirs_amount=row.amount,
        theirs_status=row.status,
        detail="in their records, never sent by Interlink in the period",
        line=row.line,
    )


def _pair(ours: Ours, rows: Sequence[Theirs], rules: Rules) -> list[Item]:
    """Ours against every downstream row carrying it: the first is compared, the rest are
    duplicates."""
    first = rows[0]
    items = compare(ours, first, rules)
    for again in rows[1:]:
        items.append(
            Item(
                "duplicate",
                ours.key,
                first.revision if first.revision is not None else ours.revision,
                theirs_amount=again.amount,
                theirs_status=again.status,
                detail=f"recorded again (first on line {first.line})",
                line=again.line,
                delivery_id=ours.delivery_id,
            )
        )
    timing = ""
    if ours.late:
        timing = "delivered after the cut-off, yet in their records"
    elif first.period == AFTER_PERIOD:
        timing = "in their records dated the next period"
    elif first.period == BEFORE_PERIOD:
        timing = "in their records dated before the period"
    if timing:
        items.append(_about(ours, "timing", timing, theirs_amount=first.amount, line=first.line))
    return items


def match_key(
    key: str, ours: Sequence[Ours], theirs: Sequence[Theirs], rules: Rules
) -> tuple[list[Item], Sequence[Ours], Sequence[Theirs]]:
    """Compare one key. Returns (differences, the ours compared, the theirs counted).

    With a revision column, each (key, revision) is matched on its own; without one, the
    latest revision we hold is what the downstream should show. Downstream rows dated outside
    the period that match nothing of ours are left out (they belong to another period).
    """
    if len(ours) == 1 and len(theirs) == 1:
        mine, row = ours[0], theirs[0]
        if (
            row.period == IN_PERIOD
            and not mine.late
            and (not rules.by_revision or row.revision == mine.revision)
        ):
            return compare(mine, row, rules), ours, theirs
    items: list[Item] = []
    if rules.by_revision:
        compared = list(ours)
        by_revision: dict[int | None, list[Theirs]] = {}
        for row in theirs:
            by_revision.setdefault(row.revision, []).append(row)
        for mine in compared:
            rows = by_revision.pop(mine.revision, None)
            items.extend(_pair(mine, rows, rules) if rows else [_missing(mine)])
        leftovers = [row for rows in by_revision.values() for row in rows]
    else:
        compared = [max(ours, key=lambda o: o.revision)] if ours else []
        if compared and theirs:
            items.extend(_pair(compared[0], theirs, rules))
            leftovers = []
        else:
            items.extend(_missing(mine) for mine in compared)
            leftovers = list(theirs)
    seen: dict[int | None, Theirs] = {}
    for row in leftovers:
        if row.period != IN_PERIOD:
            continue
        first = seen.get(row.revision)
        if first is None:
            seen[row.revision] = row
            items.append(_extra(row))
        else:
            items.append(
                Item(
                    "duplicate",
                    row.key,
                    row.revision,
                    theirs_amount=row.amount,
                    theirs_status=row.status,
                    detail=f"recorded again (first on line {first.line})",
                    line=row.line,
                )
            )
    counted = [row for row in theirs if row.period == IN_PERIOD]
    return items, compared, counted
