"""Document ids: 26-character ULIDs, sortable by time of arrival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from interlink.ids import new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def millis(doc_id: str) -> int:
    value = 0
    for char in doc_id[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_26_crockford_characters_within_128_bits() -> None:
    for _ in range(200):
        doc_id = new_id(T0)
        assert len(doc_id) == 26
        assert set(doc_id) <= set(CROCKFORD)
        assert doc_id[0] in "01234567"  # 26 * 5 = 130 bits, of which the top 2 are zero


def test_time_prefix_is_the_millisecond_timestamp() -> None:
    for offset in (0, 1, 999, 86_400_000 + 7):
        when = T0 + timedelta(milliseconds=offset)
        assert millis(new_id(when)) == int(T0.timestamp()) * 1000 + offset


def test_sorted_by_time_of_arrival() -> None:
    times = [T0 + timedelta(milliseconds=ms) for ms in (0, 1, 2, 10, 1000, 60_000, 86_400_000)]
    ids = [new_id(when) for when in times for _ in range(5)]
    groups = [ids[i : i + 5] for i in range(0, len(ids), 5)]
    for earlier, later in pairwise(groups):
        assert max(earlier) < min(later)
    stamps = [millis(doc_id) for doc_id in sorted(ids)]
    assert stamps == sorted(stamps)


def test_random_part_makes_ids_unique() -> None:
    ids = {new_id(T0) for _ in range(10_000)}
    assert len(ids) == 10_000
