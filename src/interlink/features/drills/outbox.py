"""A drill's outbox: a table the drill makes in a scratch database, fills with its documents as
rows at the drill's rate, and drops afterwards.

The topology's outbox source is pointed at this table for the rehearsal (its columns, cursor
and ``mark_taken`` as written), so the rows are taken exactly as in production: by the
sources feature's own loop, into intake, and on to the flows. The table's name is the drill's
own (``interlink_drill_<random>``): nothing else in the scratch database is read or written.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from interlink.config import SourceSettings
from interlink.errors import InputError


@dataclass(frozen=True)
class Row:
    id: int
    type: str
    payload: dict[str, Any]
    origin: str


def scratch_url(env: str) -> str:
    """The scratch database's SQLAlchemy URL from the variable ``env`` names."""
    url = os.environ.get(env, "").strip()
    if not url:
        raise InputError(
            f"the drill's outbox needs a scratch database: set {env} to a mysql:// or "
            "postgresql:// URL where the drill may create and drop its own table"
        )
    if url.startswith(("mysql://", "mariadb://")):
        return "mysql+pymysql://" + url.split("://", 1)[1]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("mysql+", "postgresql+")):
        return url
    raise InputError(f"{env} must be a mysql:// or postgresql:// URL")


class DrillOutbox:
    """The scratch table shaped as ``settings`` reads it."""

    def __init__(self, env: str, settings: SourceSettings, tz: tzinfo) -> None:
        self.env = env
        self.settings = settings
        self.tz = tz
        self.engine = sa.create_engine(scratch_url(env), connect_args={"connect_timeout": 5})
        self.name = f"interlink_drill_{secrets.token_hex(4)}"
        cols = settings.columns
        self.columns = cols
        at = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
        columns: list[sa.Column[Any]] = [
            sa.Column(cols.id, sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
        ]
        if settings.document is None and cols.type:
            columns.append(sa.Column(cols.type, sa.String(100), nullable=False))
        assert cols.payload is not None, "checked with the drill file"
        columns.append(sa.Column(cols.payload, sa.Text, nullable=False))
        if cols.updated_at:
            columns.append(sa.Column(cols.updated_at, at, nullable=False))
        if settings.mark_taken and settings.mark_taken not in {c.name for c in columns}:
            columns.append(sa.Column(settings.mark_taken, at, nullable=True))
        self.table = sa.Table(self.name, sa.MetaData(), *columns)
        self.naive = self.engine.dialect.name in ("mysql", "mariadb")
        self.rows: list[Row] = []

    def create(self) -> None:
        try:
            self.table.create(self.engine)
        except sa.exc.SQLAlchemyError as e:
            self.engine.dispose()
            raise InputError(
                f"cannot create the drill's outbox in {self.env}: {_short(e)}"
            ) from None

    def drop(self) -> None:
        try:
            self.table.drop(self.engine, checkfirst=True)
        finally:
            self.engine.dispose()

    def source_settings(self, url_env: str) -> SourceSettings:
        """The topology's source, reading the drill's table through ``url_env``."""
        return self.settings.model_copy(update={"url_env": url_env, "table": self.name})

    def insert(self, items: list[tuple[str, dict[str, Any], str]], now: datetime) -> None:
        """Write rows (type, payload, origin) in one transaction, as an upstream's relay."""
        when = now.astimezone(self.tz)
        stamp = when.replace(tzinfo=None) if self.naive else when
        values = []
        payload_column = self.columns.payload or "payload"
        for doc_type, payload, _ in items:
            row: dict[str, Any] = {payload_column: json.dumps(payload, ensure_ascii=False)}
            if self.settings.document is None and self.columns.type:
                row[self.columns.type] = doc_type
            if self.columns.updated_at:
                row[self.columns.updated_at] = stamp
            values.append(row)
        with self.engine.begin() as conn:
            first = len(self.rows)
            conn.execute(self.table.insert(), values)
            ids = (
                conn.execute(
                    sa.select(self.table.c[self.columns.id])
                    .order_by(self.table.c[self.columns.id].desc())
                    .limit(len(values))
                )
                .scalars()
                .all()
            )
        for row_id, (doc_type, payload, origin) in zip(sorted(ids), items, strict=True):
            self.rows.append(Row(int(row_id), doc_type, payload, origin))
        assert len(self.rows) == first + len(items)

    def taken(self) -> int | None:
        """Rows marked taken (``mark_taken``), or None without the column."""
        column = self.settings.mark_taken
        if not column:
            return None
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(self.table.c[column].is_not(None))
                ).scalar_one()
            )


def _short(exc: sa.exc.SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
