"""An upstream's amount cannot stall or crash a map: exponents are bounded before any
arithmetic. ``"1e999990"`` took a minute of CPU to turn into fen, ``"1e999999999"`` raised the
decimal context's Overflow (not the ValueError a map turns into a dead delivery), and
``"1e-999999999"`` underflowed to 0 fen instead of being refused."""

from __future__ import annotations

import pytest

from interlink.features.mapping.formats import fen


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("1e999999999", "too large"),
        ("-1E+999999", "too large"),
        (1e308, "too large"),
        ("1e-999999999", "fraction of a fen"),
        ("1e999990", "too large"),  # last: before the bound it ran for a minute
    ],
)
def test_an_amount_beyond_any_fen_is_refused_at_once(amount: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        fen(amount)


def test_amounts_in_range_still_convert_exactly() -> None:
    assert [fen(a) for a in ("1E+18", "1e-2", "0.010", "12.34", 12.34, "0E-99")] == [
        10**20, 1, 1, 1234, 1234, 0,
    ]  # fmt: skip
