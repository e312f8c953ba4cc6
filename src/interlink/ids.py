"""Document ids: 26-character ULIDs (Crockford base32), sortable by time of arrival."""

from __future__ import annotations

import os
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Ten bits at a time: every pair of characters, indexed by its value.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]


def new_id(now: datetime) -> str:
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    pairs = []
    for _ in range(13):
        pairs.append(_PAIRS[value & 1023])
        value >>= 10
    return "".join(reversed(pairs))
