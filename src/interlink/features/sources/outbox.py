"""Reading an upstream's outbox table (MySQL/MariaDB or PostgreSQL) after a cursor.

The cursor is the last row taken: its id, or ``[updated_at, id]``. Rows come in cursor
order, ``batch`` at a time. With the ``updated_at`` cursor only rows older than the settle
delay are read, so that a transaction that committed late, within that delay, is still seen
(docs/sources.md, "Rows that commit out of order"). Nothing here writes Interlink's store.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from interlink.config import SourceSettings
from interlink.errors import InputError
from interlink.store.db import normalize_url

# Rows behind are counted up to this many (shown as that number beyond it).
LAG_COUNT_CAP = 1_000_000


class Unreachable(Exception):
    """The upstream database could not be read (down, refused, bad credentials)."""


@dataclass(slots=True)
class Pulled:
    """One upstream row: where it is (``ref``, ``position``), its type and payload."""

    ref: str
    id: Any
    position: Any
    type: Any
    payload: Any
    version: str


def engine_url(settings: SourceSettings) -> str:
    """The upstream's SQLAlchemy URL from ``url_env``; mysql:// means PyMySQL here."""
    assert settings.url_env is not None
    url = os.environ.get(settings.url_env, "").strip()
    if not url:
        raise InputError(
            f"source {settings.name}: {settings.url_env} is not set (the upstream's database URL)"
        )
    if url.startswith(("mysql://", "mariadb://")):
        url = "mysql+pymysql://" + url.split("://", 1)[1]
    url = normalize_url(url)
    if not url.startswith(("mysql+", "postgresql+")):
        raise InputError(
            f"source {settings.name}: {settings.url_env} must be a mysql:// or postgresql:// URL"
        )
    return url


def json_safe(value: Any) -> Any:
    """A column value as JSON can carry it: decimals as text (no float rounding), times ISO."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def _payload(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            try:  # numbers beyond 64 bits
                return json.loads(value)
            except (ValueError, RecursionError):  # nested too deep: one refused row
                return value  # intake refuses it: not an object
    return json_safe(value)


def encode_cursor(position: Any) -> str:
    return json.dumps(json_safe(position))


def _revive(value: Any, naive: bool) -> Any:
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
        return when.replace(tzinfo=None) if naive else when
    return value


class Outbox:
    """An upstream table read with its own small connection pool."""

    def __init__(self, settings: SourceSettings, tz: tzinfo) -> None:
        self.settings = settings
        self.tz = tz
        self.url = engine_url(settings)
        self.dialect = "mysql" if self.url.startswith("mysql") else "postgresql"
        args: dict[str, Any] = {"connect_timeout": 5}
        try:
            self.engine = sa.create_engine(
                self.url, pool_pre_ping=True, pool_size=2, max_overflow=2, connect_args=args
            )
        except (ValueError, SQLAlchemyError):
            # Never the URL itself in the message: it holds the password.
            raise InputError(
                f"source {settings.name}: {settings.url_env} is not a usable database URL "
                "(mysql://user:password@host:port/db or postgresql://...)"
            ) from None
        if self.dialect == "postgresql":
            zone = getattr(tz, "key", "UTC")

            @sa.event.listens_for(self.engine, "connect")
            def _zone(dbapi_connection: Any, _record: Any) -> None:
                # A timestamp without time zone is read in the source's zone.
                with dbapi_connection.cursor() as cursor:
                    cursor.execute(f"SET TIME ZONE '{zone}'")
                dbapi_connection.commit()

        schema, _, name = (settings.table or "").rpartition(".")
        cols = settings.columns
        wanted = [cols.id, cols.updated_at, cols.payload, settings.mark_taken]
        if settings.document is None:
            wanted.append(cols.type)
        named = list(dict.fromkeys(c for c in wanted if c))
        self.table = sa.table(name, *(sa.column(c) for c in named), schema=schema or None)
        c = self.table.c
        self.id: sa.ColumnClause[Any] = c[cols.id]
        self.at: sa.ColumnClause[Any] | None = c[cols.updated_at] if cols.updated_at else None
        self.type: sa.ColumnClause[Any] | None = (
            c[cols.type] if cols.type and settings.document is None else None
        )
        self.payload: sa.ColumnClause[Any] | None = c[cols.payload] if cols.payload else None
        self._naive: bool | None = None

    def close(self) -> None:
        self.engine.dispose()

    # -- cursor arithmetic -------------------------------------------------------------------

    def _naive_times(self, conn: sa.Connection) -> bool:
        """Whether the time column holds naive times (MySQL always; PostgreSQL ``timestamp``)."""
        if self._naive is None:
            naive = True
            if self.dialect == "postgresql" and self.at is not None:
                schema, _, name = (self.settings.table or "").rpartition(".")
                for col in sa.inspect(conn).get_columns(name, schema=schema or None):
                    if col["name"] == self.at.name:
                        naive = not getattr(col["type"], "timezone", False)
            self._naive = naive
        return self._naive

    def _after(self, cursor: Any, naive: bool) -> Any:
        if cursor is None:
            return sa.true()
        if self.settings.cursor == "id":
            return self.id > cursor
        assert self.at is not None
        at, last = _revive(cursor[0], naive), cursor[1]
        return sa.or_(self.at > at, sa.and_(self.at == at, self.id > last))

    def _time(self, when: datetime, naive: bool) -> datetime:
        return when.astimezone(self.tz).replace(tzinfo=None) if naive else when

    # -- reading -----------------------------------------------------------------------------

    def read(
        self, cursor: Any, limit: int, now: datetime
    ) -> tuple[list[Pulled], int | None, datetime | None]:
        """Up to ``limit`` rows after ``cursor``, and the lag after them: how many rows wait
        and when the oldest of them was written (None without a time column)."""
        try:
            with self.engine.connect() as conn:
                naive = self._naive_times(conn)
                rows = self._rows(conn, cursor, limit, now, naive)
                last = rows[-1].position if rows else cursor
                behind, oldest = self._lag(conn, last, naive)
                conn.rollback()
        except SQLAlchemyError as exc:
            raise Unreachable(_short(exc)) from None
        return rows, behind, oldest

    def _rows(
        self, conn: sa.Connection, cursor: Any, limit: int, now: datetime, naive: bool
    ) -> list[Pulled]:
        s = self.settings
        query: sa.Select[Any]
        if self.payload is None:
            query = sa.select(sa.literal_column("*")).select_from(self.table)
        else:
            payload: Any = self.payload
            if self.dialect == "postgresql":
                # JSON as text, parsed by orjson: psycopg's json.loads is several times slower.
                payload = sa.cast(self.payload, sa.Text).label(self.payload.name)
            cols = [self.id, payload]
            if self.type is not None:
                cols.append(self.type)
            if self.at is not None:
                cols.append(self.at)
            query = sa.select(*cols).select_from(self.table)
        query = query.where(self._after(cursor, naive))
        if s.cursor == "updated_at":
            assert self.at is not None
            query = query.where(self.at <= self._time(now - s.settle, naive))
            query = query.order_by(self.at, self.id)
        else:
            query = query.order_by(self.id)
        out: list[Pulled] = []
        for row in conn.execute(query.limit(limit)).mappings():
            row_id = row[self.id.name]
            at = row[self.at.name] if self.at is not None else None
            position = row_id if s.cursor == "id" else [at, row_id]
            if self.payload is None:
                payload = json_safe(dict(row))
            else:
                payload = _payload(row[self.payload.name])
            type_ = s.document if self.type is None else row[self.type.name]
            ref = str(row_id)
            version = ref if s.cursor == "id" else f"{ref}@{json_safe(at)}"
            out.append(Pulled(ref, row_id, json_safe(position), type_, payload, version))
        return out

    def _lag(self, conn: sa.Connection, cursor: Any, naive: bool) -> tuple[int, datetime | None]:
        # Counted through the id index, up to LAG_COUNT_CAP rows: a poll stays cheap however
        # far behind the source is.
        after = self._after(cursor, naive)
        waiting = sa.select(self.id).select_from(self.table).where(after).limit(LAG_COUNT_CAP)
        count = conn.execute(sa.select(sa.func.count()).select_from(waiting.subquery())).scalar()
        oldest = None
        if self.at is not None and count:
            # The first row in cursor order (through the index): with an id cursor, the
            # lowest id waiting, which is the oldest but for rows that committed late.
            first = sa.select(self.at).select_from(self.table).where(after)
            order = [self.id] if self.settings.cursor == "id" else [self.at, self.id]
            oldest = conn.execute(first.order_by(*order).limit(1)).scalar()
        if isinstance(oldest, datetime):
            oldest = oldest.replace(tzinfo=self.tz) if oldest.tzinfo is None else oldest
            oldest = oldest.astimezone(UTC)
        else:
            oldest = None
        return int(count or 0), oldest

    def mark(self, ids: Sequence[Any], now: datetime) -> None:
        """Set the ``mark_taken`` column of rows already accepted (after the cursor's commit)."""
        column = self.settings.mark_taken
        if not column or not ids:
            return
        try:
            with self.engine.begin() as conn:
                naive = self._naive_times(conn)
                conn.execute(
                    sa.update(self.table)
                    .where(self.id.in_(list(ids)))
                    .values({self.table.c[column]: self._time(now, naive)})
                )
        except SQLAlchemyError as exc:
            raise Unreachable(_short(exc)) from None


def _short(exc: SQLAlchemyError) -> str:
    """The driver's message without SQLAlchemy's SQL echo and background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.split("\n")[0][:300]
