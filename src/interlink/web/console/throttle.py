"""The sign-in throttle: after repeated failures, a user name or a client address is refused
(429 with Retry-After) until the oldest of its recent failures leaves the window, even with
the right password.

The failures are kept in the store (``console_signin_failures``), so every API process on one
database counts the same guesses. Attempts refused while throttled are not counted and their
password is not checked: a guesser cannot extend the wait of the user they target, and spends
none of our scrypt time.

Per user: 5 failures within 15 minutes; per address: 20 (people behind one office NAT share
an address). That is at most 480 guesses a day at one name, whatever the number of
addresses, and 1,920 a day from one address over any number of names.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import Connection

from interlink.store import sessions as store

USER_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
# What the store keeps of a name or an address it was sent: enough to tell them apart.
NAME_CHARS = 100
ADDRESS_CHARS = 64


def wait_after(failures: list[datetime], limit: int, window: timedelta, now: datetime) -> float:
    """Seconds until fewer than ``limit`` of ``failures`` (newest first) lie in the window
    ending now; 0 when that is already so."""
    if len(failures) < limit:
        return 0.0
    free_at = failures[limit - 1] + window
    return max((free_at - now).total_seconds(), 0.0)


def retry_after(conn: Connection, user: str, address: str, now: datetime) -> int:
    """Whole seconds this sign-in must wait (0: go ahead)."""
    since = now - WINDOW
    by_user = store.newest_failures(conn, since=since, limit=USER_LIMIT, user=user[:NAME_CHARS])
    by_address = store.newest_failures(
        conn, since=since, limit=ADDRESS_LIMIT, address=address[:ADDRESS_CHARS]
    )
    wait = max(
        wait_after(by_user, USER_LIMIT, WINDOW, now),
        wait_after(by_address, ADDRESS_LIMIT, WINDOW, now),
    )
    return math.ceil(wait)


def failed(conn: Connection, user: str, address: str, now: datetime) -> None:
    store.add_failure(
        conn, at=now, user=user[:NAME_CHARS], address=address[:ADDRESS_CHARS], window=WINDOW
    )


def succeeded(conn: Connection, user: str) -> None:
    store.clear_failures(conn, user[:NAME_CHARS])
