"""The migrations create exactly the tables the code declares, on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import interlink.features.registry  # noqa: F401 - every feature's tables join the metadata
from interlink.store.schema import metadata


def test_migrated_schema_matches_the_metadata(hub):
    with hub.store.reading() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, metadata)
    # alembic_version is alembic's own table; everything else must agree.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    assert diff == []


def test_every_head_is_applied(hub):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from interlink.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with hub.store.reading() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    assert current == heads and len(heads) >= 1


def test_processes_starting_together_on_a_fresh_postgresql_database(pg_template):
    """Several API and worker processes started at once: one migrates, none fails."""
    import os
    import threading
    import uuid

    import psycopg

    from interlink.store.db import open_store
    from tests.conftest import PG_DEFAULT, PG_ENV, _pg_url

    base = os.environ.get(PG_ENV, PG_DEFAULT)
    name = f"interlink_race_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(_pg_url(base, name)).close()
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
