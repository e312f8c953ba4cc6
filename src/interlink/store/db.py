"""The store: connections, migrations, and the one writer.

All writes of a process go through one writer thread fed by a queue (the datasette pattern).
The thread takes every job that is waiting, runs each in its own savepoint inside one
transaction and commits once: group commit. Intake of many small requests and the engine's
outcomes therefore cost one commit per batch, not one per document. A job that fails rolls
back its savepoint alone and gets its exception back; the others commit.

Reads run on pooled connections in worker threads and never wait for the writer (SQLite WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError

from interlink.errors import InterlinkError, StoreError

T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
_STOP = object()
# How many queued jobs one commit may carry; more waits for the next commit.
GROUP_LIMIT = 2000


def _sqlite_engine(url: str, begin: str, cache_kib: int, pool_size: int) -> Engine:
    # The page cache is per connection: a big one for the single writer, small ones for the
    # readers, so that memory stays bounded however large the tables grow.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin, so savepoints work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Store:
    """Owns the engines and the writer thread for one database URL."""

    def __init__(self, url: str) -> None:
        url = normalize_url(url)
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        try:
            if self.dialect == "sqlite":
                # The writer takes the write lock up front so that two processes never
                # deadlock upgrading read locks; readers stay deferred and never block.
                self.write_engine = _sqlite_engine(url, "BEGIN IMMEDIATE", 32768, 2)
                self.read_engine = _sqlite_engine(url, "BEGIN", 8192, 4)
            elif self.dialect == "postgresql":
                # pre-ping: a connection that died with a server restart is replaced, not used.
                self.write_engine = create_engine(
                    url,
                    pool_pre_ping=True,
                    pool_size=8,
                    max_overflow=8,
                    pool_recycle=1800,
                    # Every statement planned for the table as it is now. psycopg prepares a
                    # statement after its fifth run, and PostgreSQL may then keep one generic
                    # plan made while the table was tiny: intake's identity lookup kept a
                    # plan that walked every document of the type for each key (seconds per
                    # batch at 20,000 documents). Planning costs well under a millisecond.
                    connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
                )
                self.read_engine = self.write_engine
            else:
                raise StoreError(
                    f"unsupported database {url.split(':', 1)[0]!r}: use sqlite or postgresql"
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database: {exc}") from exc
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def libpq_url(self) -> str:
        """The PostgreSQL URL as libpq (psycopg's own connect) wants it."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest migrations (idempotent).

        Each capability adds its tables in a migration of its own that branches from
        ``0001``; ``heads`` applies every branch.
        """
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.write_engine.begin() as conn:
                if self.dialect == "postgresql":
                    # Several processes starting on a fresh database: one migrates, the
                    # others wait for it and then find nothing to do.
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7134823)")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the database: {exc}") from exc

    def tables(self) -> set[str]:
        with self.read_engine.connect() as conn:
            return set(inspect(conn).get_table_names())

    # -- reads ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        try:
            with self.read_engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {exc}") from exc

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        with self.reading() as conn:
            return fn(conn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await asyncio.to_thread(self.read_sync, fn)

    def ping(self) -> None:
        """Raises unless the store answers a trivial read (liveness)."""
        self.read_sync(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    # -- writes ---------------------------------------------------------------------------

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a transaction of its own, in the calling thread (CLI, tests)."""
        if self._thread is not None and self._thread.is_alive():
            return self.submit(fn).result()
        try:
            with self.write_engine.begin() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {exc}") from exc

    def submit(self, fn: Callable[[Connection], T]) -> Future[T]:
        """Queue ``fn`` for the writer thread; the future resolves after the commit."""
        self._ensure_writer()
        future: Future[T] = Future()
        self._queue.put((fn, future))
        return future

    async def write(self, fn: Callable[[Connection], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def _ensure_writer(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._writer, name="interlink-writer", daemon=True
                )
                self._thread.start()

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < GROUP_LIMIT:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Callable[[Connection], Any], Future[Any]]]) -> None:
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.write_engine.begin() as conn:
                for fn, future in batch:
                    if not future.set_running_or_notify_cancel():
                        continue
                    if len(batch) == 1:
                        try:
                            results.append((future, fn(conn), None))
                        except BaseException as exc:
                            # Alone in the transaction: let it roll back whole.
                            results.append((future, None, exc))
                            raise
                        continue
                    savepoint = conn.begin_nested()
                    try:
                        value = fn(conn)
                    except Exception as exc:
                        savepoint.rollback()
                        results.append((future, None, exc))
                    else:
                        savepoint.commit()
                        results.append((future, value, None))
        except BaseException as exc:
            failure = _as_store_error(exc)
            done = {id(f) for f, _, _ in results}
            for future, _value, error in results:
                future.set_exception(error if error is not None else failure)
            for _fn, future in batch:
                if id(future) not in done and not future.done():
                    future.set_exception(failure)
            return
        for future, value, error in results:
            if error is not None:
                future.set_exception(_as_store_error(error))
            else:
                future.set_result(value)

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
        self._thread = None
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def _as_store_error(exc: BaseException) -> BaseException:
    if isinstance(exc, InterlinkError) or not isinstance(exc, SQLAlchemyError):
        return exc
    return StoreError(f"database write failed: {exc}")


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 here (SQLAlchemy's default
    would be psycopg2, which we do not ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_store(url: str, migrate: bool = True) -> Store:
    store = Store(url)
    if migrate:
        store.migrate()
    return store
