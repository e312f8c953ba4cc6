"""Every statement of the sources feature, by name."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from interlink.features.sources.tables import source_files, source_problems, source_state
from interlink.store.queries import events


def get_state(conn: Connection, name: str) -> Any | None:
    return conn.execute(select(source_state).where(source_state.c.name == name)).first()


def all_states(conn: Connection) -> dict[str, Any]:
    return {row.name: row for row in conn.execute(select(source_state))}


def ensure_state(conn: Connection, name: str, system: str) -> None:
    """The source's row, created empty the first time (another process may race: fine)."""
    if get_state(conn, name) is not None:
        return
    savepoint = conn.begin_nested()
    try:
        conn.execute(
            insert(source_state).values(
                name=name, system=system, paused=False, accepted=0, refused=0
            )
        )
    except IntegrityError:
        savepoint.rollback()
    else:
        savepoint.commit()


def advance(
    conn: Connection, name: str, expected: str | None, cursor: str | None, **values: Any
) -> bool:
    """Move the cursor from ``expected`` to ``cursor``; False if another poller moved it
    first (the caller's transaction must then roll back)."""
    done = conn.execute(
        update(source_state)
        .where(source_state.c.name == name)
        .where(source_state.c.cursor.is_not_distinct_from(expected))
        .values(cursor=cursor, **values)
    )
    return done.rowcount == 1


def set_state(conn: Connection, name: str, **values: Any) -> None:
    conn.execute(update(source_state).where(source_state.c.name == name).values(**values))


def add_counts(conn: Connection, name: str, accepted: int, refused: int) -> None:
    conn.execute(
        update(source_state)
        .where(source_state.c.name == name)
        .values(
            accepted=source_state.c.accepted + accepted,
            refused=source_state.c.refused + refused,
        )
    )


def add_problems(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(source_problems), list(rows))


def record_batch(
    conn: Connection,
    name: str,
    system: str,
    read: int,
    problems: list[dict[str, Any]],
    at: datetime,
) -> None:
    """A batch's refused rows (``problem_row``s) and counts, and ``source_rows_refused``."""
    add_problems(conn, problems)
    add_counts(conn, name, read - len(problems), len(problems))
    if problems:
        events.add_event(
            conn,
            at,
            "source_rows_refused",
            {
                "source": name,
                "systems": [system],
                "count": len(problems),
                "first": problems[0]["ref"],
                "message": problems[0]["message"],
            },
            system=system,
        )


def list_problems(
    conn: Connection, source: str | None = None, limit: int = 100, before: int | None = None
) -> list[Any]:
    query = select(source_problems)
    if source:
        query = query.where(source_problems.c.source == source)
    if before is not None:
        query = query.where(source_problems.c.id < before)
    return list(conn.execute(query.order_by(source_problems.c.id.desc()).limit(limit)))


def count_problems(conn: Connection) -> dict[str, int]:
    query = select(source_problems.c.source, func.count()).group_by(source_problems.c.source)
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def file_taken(conn: Connection, source: str, name: str, sha256: str) -> bool:
    query = select(source_files.c.id).where(
        source_files.c.source == source,
        source_files.c.name == name,
        source_files.c.sha256 == sha256,
    )
    return conn.execute(query).first() is not None


def add_file(
    conn: Connection,
    source: str,
    name: str,
    sha256: str,
    at: datetime,
    rows: int,
    accepted: int,
    refused: int,
) -> None:
    conn.execute(
        insert(source_files).values(
            source=source,
            name=name,
            sha256=sha256,
            at=at,
            rows=rows,
            accepted=accepted,
            refused=refused,
        )
    )


def problem_row(
    source: str, at: datetime, ref: str, message: str, problems: Any, row: Any
) -> dict[str, Any]:
    return {
        "source": source,
        "at": at,
        "ref": ref[:300],
        "message": message,
        "problems": json.dumps(problems, ensure_ascii=False, default=str),
        "row": _row_text(row),
    }


# A refused row is kept for people to read, up to about 64 KB of text.
MAX_ROW_TEXT = 60_000


def _row_text(row: Any) -> str:
    """The row as JSON; a longer one is kept as the start of its text, still valid JSON."""
    text = json.dumps(row, ensure_ascii=False, default=str)
    if len(text) <= MAX_ROW_TEXT:
        return text
    return json.dumps({"truncated": True, "start": text[:MAX_ROW_TEXT]}, ensure_ascii=False)
