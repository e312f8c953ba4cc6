"""The migrations create exactly the tables the code declares, on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import interlink.capabilities  # noqa: F401 - every capability's tables on the metadata
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
