"""Alembic environment: always run with a connection handed over by :mod:`interlink.store.db`."""

from __future__ import annotations

from alembic import context

from interlink.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when someone runs alembic by hand
    raise SystemExit("run migrations with `interlink migrate`, which passes the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
