"""SQL of change notices, named once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from interlink.features.changes.tables import (
    change_attachments,
    change_keys,
    change_recipients,
    changes,
)

LINK_KEY = "ack-links"


def insert_change(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(insert(changes).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_recipients(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(change_recipients), rows)


def get_change(conn: Connection, change_id: int) -> Any:
    return conn.execute(select(changes).where(changes.c.id == change_id)).first()


def list_changes(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 100,
) -> list[Any]:
    """Changes by the time they ship, latest first; ``since``/``until`` bound that time."""
    query = select(changes).order_by(changes.c.at.desc(), changes.c.id.desc())
    if since is not None:
        query = query.where(changes.c.at >= since)
    if until is not None:
        query = query.where(changes.c.at < until)
    if limit is not None:
        query = query.limit(limit)
    return list(conn.execute(query))


def recipients(conn: Connection, change_ids: list[int]) -> list[Any]:
    if not change_ids:
        return []
    return list(
        conn.execute(
            select(change_recipients)
            .where(change_recipients.c.change_id.in_(change_ids))
            .order_by(change_recipients.c.id)
        )
    )


def get_recipient(conn: Connection, change_id: int, recipient_id: int) -> Any:
    return conn.execute(
        select(change_recipients).where(
            change_recipients.c.change_id == change_id, change_recipients.c.id == recipient_id
        )
    ).first()


def acknowledge(conn: Connection, recipient_id: int, at: datetime, by: str) -> bool:
    """Record the first acknowledgement; False when it was already acknowledged."""
    result = conn.execute(
        update(change_recipients)
        .where(change_recipients.c.id == recipient_id, change_recipients.c.acked_at.is_(None))
        .values(acked_at=at, acked_by=by[:300], next_at=None)
    )
    return result.rowcount == 1


def due_notices(conn: Connection, now: datetime, limit: int) -> list[int]:
    """Recipients whose notice is due (new, or failed and due again): a read, so an idle
    loop never takes the writer."""
    return list(
        conn.execute(
            select(change_recipients.c.id)
            .where(change_recipients.c.next_at <= now, change_recipients.c.notified_at.is_(None))
            .order_by(change_recipients.c.id)
            .limit(limit)
        ).scalars()
    )


def claim_notices(
    conn: Connection, recipient_ids: list[int], now: datetime, lease_until: datetime
) -> list[Any]:
    """The due ones among ``recipient_ids``, leased until ``lease_until`` (two processes
    never take the same one), with their changes."""
    taken = []
    for recipient_id in recipient_ids:
        result = conn.execute(
            update(change_recipients)
            .where(change_recipients.c.id == recipient_id, change_recipients.c.next_at <= now)
            .values(next_at=lease_until)
        )
        if result.rowcount == 1:
            taken.append(recipient_id)
    return _with_changes(conn, taken)


def due_reminders(conn: Connection, now: datetime, lead: timedelta, limit: int) -> list[int]:
    """Unacknowledged recipients of changes shipping within ``lead`` of ``now``, told before
    the reminder time (a later notice is reminder enough), not reminded yet."""
    rows = conn.execute(
        select(change_recipients.c.id, change_recipients.c.notified_at, changes.c.at)
        .join(changes, changes.c.id == change_recipients.c.change_id)
        .where(
            change_recipients.c.acked_at.is_(None),
            change_recipients.c.reminded_at.is_(None),
            change_recipients.c.notified_at.is_not(None),
            changes.c.at > now,
            changes.c.at <= now + lead,
        )
        .order_by(change_recipients.c.id)
    )
    return [r.id for r in rows if r.notified_at < r.at - lead][:limit]


def claim_reminders(conn: Connection, recipient_ids: list[int], now: datetime) -> list[Any]:
    """Mark ``recipient_ids`` reminded now, those not reminded yet, and return them with
    their changes: each is reminded once, whichever process runs it."""
    taken = []
    for recipient_id in recipient_ids:
        result = conn.execute(
            update(change_recipients)
            .where(
                change_recipients.c.id == recipient_id, change_recipients.c.reminded_at.is_(None)
            )
            .values(reminded_at=now)
        )
        if result.rowcount == 1:
            taken.append(recipient_id)
    return _with_changes(conn, taken)


def _with_changes(conn: Connection, recipient_ids: list[int]) -> list[Any]:
    if not recipient_ids:
        return []
    query = (
        select(
            change_recipients,
            changes.c.system.label("change_system"),
            changes.c.title,
            changes.c.kind,
            changes.c.at,
            changes.c.description,
            changes.c.affected,
        )
        .join(changes, changes.c.id == change_recipients.c.change_id)
        .where(change_recipients.c.id.in_(recipient_ids))
        .order_by(change_recipients.c.id)
    )
    return list(conn.execute(query))


def finish_notices(conn: Connection, outcomes: dict[int, dict[str, Any]]) -> None:
    """Record what became of each recipient's notice (or reminder): recipient id → values."""
    for recipient_id, values in outcomes.items():
        conn.execute(
            update(change_recipients).where(change_recipients.c.id == recipient_id).values(**values)
        )


def unacknowledged_due(conn: Connection, now: datetime, until: datetime) -> list[Any]:
    """Changes shipping in ``[now, until)`` with recipients who have not acknowledged."""
    return list(
        conn.execute(
            select(changes)
            .where(
                changes.c.at >= now,
                changes.c.at < until,
                changes.c.id.in_(
                    select(change_recipients.c.change_id).where(
                        change_recipients.c.acked_at.is_(None)
                    )
                ),
            )
            .order_by(changes.c.at)
        )
    )


def add_attachment(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(insert(change_attachments).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def attachments(conn: Connection, change_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(change_attachments)
            .where(change_attachments.c.change_id == change_id)
            .order_by(change_attachments.c.id)
        )
    )


def get_attachment(conn: Connection, change_id: int, attachment_id: int) -> Any:
    return conn.execute(
        select(change_attachments).where(
            change_attachments.c.change_id == change_id,
            change_attachments.c.id == attachment_id,
        )
    ).first()


def link_key(conn: Connection) -> str | None:
    return conn.execute(
        select(change_keys.c.secret).where(change_keys.c.name == LINK_KEY)
    ).scalar_one_or_none()


def save_link_key(conn: Connection, secret: str) -> str:
    """Keep ``secret`` unless another process saved one first; the key in force."""
    existing = link_key(conn)
    if existing is not None:
        return existing
    conn.execute(insert(change_keys).values(name=LINK_KEY, secret=secret))
    return secret
