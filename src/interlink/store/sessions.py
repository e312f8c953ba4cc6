"""SQL for the console's sessions and its sign-in throttle, named once.

Both live in the store, not in a process, so that several API processes on one PostgreSQL
database agree: a logout on one ends the session on all, and a guesser cannot spread guesses
over processes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from interlink.store.schema import console_sessions, console_signin_failures

# Rows this long past their end are deleted when a new session or failure is written.
KEEP_EXPIRED = timedelta(days=1)


def open_session(
    conn: Connection,
    *,
    session_id: str,
    user: str,
    password: str,
    created: datetime,
    expires: datetime,
) -> None:
    conn.execute(
        delete(console_sessions).where(console_sessions.c.expires < created - KEEP_EXPIRED)
    )
    conn.execute(
        insert(console_sessions).values(
            id=session_id, username=user, password=password, created=created, expires=expires
        )
    )


def get_session(conn: Connection, session_id: str) -> Any:
    """The session's row (one primary-key read), or None."""
    return conn.execute(
        select(
            console_sessions.c.username,
            console_sessions.c.password,
            console_sessions.c.expires,
            console_sessions.c.revoked,
        ).where(console_sessions.c.id == session_id)
    ).first()


def revoke_session(conn: Connection, session_id: str, at: datetime) -> None:
    conn.execute(
        update(console_sessions)
        .where(console_sessions.c.id == session_id, console_sessions.c.revoked.is_(None))
        .values(revoked=at)
    )


def add_failure(
    conn: Connection, *, at: datetime, user: str, address: str, window: timedelta
) -> None:
    conn.execute(delete(console_signin_failures).where(console_signin_failures.c.at < at - window))
    conn.execute(insert(console_signin_failures).values(at=at, username=user, address=address))


def newest_failures(
    conn: Connection,
    *,
    since: datetime,
    limit: int,
    user: str | None = None,
    address: str | None = None,
) -> list[datetime]:
    """The times of the newest ``limit`` failures since ``since`` of a user name or of an
    address, newest first: read along the index, at most ``limit`` rows."""
    table = console_signin_failures
    column, value = (table.c.username, user) if user is not None else (table.c.address, address)
    rows = conn.execute(
        select(table.c.at)
        .where(column == value, table.c.at >= since)
        .order_by(table.c.at.desc())
        .limit(limit)
    )
    return [row[0] for row in rows]


def clear_failures(conn: Connection, user: str) -> None:
    """A user who signed in is no longer being guessed at: the failures of that name go (the
    address's stay, so an attacker cannot reset them with an account of their own)."""
    conn.execute(delete(console_signin_failures).where(console_signin_failures.c.username == user))
