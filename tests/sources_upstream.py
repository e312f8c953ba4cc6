"""Upstream databases for the sources tests: MariaDB/MySQL and PostgreSQL outbox tables.

Addresses come from INTERLINK_TEST_MYSQL_URL and INTERLINK_TEST_PG (the store's variable);
each test gets its own table, dropped afterwards. Unreachable servers skip the test, except
under CI=true, where they fail it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.conftest import PG_DEFAULT, PG_ENV

MYSQL_ENV = "INTERLINK_TEST_MYSQL_URL"
MYSQL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/test"


def upstream_url(kind: str) -> str:
    if kind == "mysql":
        return os.environ.get(MYSQL_ENV, MYSQL_DEFAULT)
    url = os.environ.get(PG_ENV, PG_DEFAULT)
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@dataclass
class Upstream:
    kind: str
    url: str
    engine: sa.Engine
    table: str

    def exec(self, sql: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def outbox(self, extra: str = "") -> None:
        """A Debezium-style outbox table with an auto-increment id and a time column."""
        ident = (
            "BIGINT AUTO_INCREMENT PRIMARY KEY" if self.kind == "mysql" else "BIGSERIAL PRIMARY KEY"
        )
        times = "DATETIME(6)" if self.kind == "mysql" else "TIMESTAMP"
        payload = "JSON" if self.kind == "mysql" else "JSONB"
        self.exec(
            f"CREATE TABLE {self.table} (id {ident}, aggregatetype VARCHAR(100), "
            f"aggregateid VARCHAR(100), type VARCHAR(100), payload {payload}, "
            f"updated_at {times}, taken_at {times} NULL{extra})"
        )

    def insert(self, conn: sa.Connection, type_: str, payload: str, at: object = None) -> int:
        row = conn.execute(
            sa.text(
                f"INSERT INTO {self.table} (aggregatetype, aggregateid, type, payload, updated_at)"
                " VALUES (:t, 'x', 'created', :p, :at)"
                + ("" if self.kind == "mysql" else " RETURNING id")
            ),
            {"t": type_, "p": payload, "at": at},
        )
        return int(row.lastrowid if self.kind == "mysql" else row.scalar_one())

    def count(self, where: str = "1=1") -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(f"SELECT COUNT(*) FROM {self.table} WHERE {where}")
                ).scalar_one()
            )


def open_upstream(kind: str) -> Iterator[Upstream]:
    url = upstream_url(kind)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"{kind} at {url} is required under CI: {exc}")
        pytest.skip(f"{kind} at {url} is not reachable ({exc}); set {MYSQL_ENV} or {PG_ENV}")
    up = Upstream(kind, url, engine, f"src_{uuid.uuid4().hex[:10]}")
    try:
        yield up
    finally:
        up.exec(f"DROP TABLE IF EXISTS {up.table}")
        engine.dispose()
