"""Alembic environment: always run with a connection handed over by `personabot.store.migrate`.

There is no alembic.ini and no URL here on purpose: the store opens the connection (with its
pragmas, its lock and its transaction) and Alembic only applies the scripts inside it.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached if someone runs plain `alembic`
    raise RuntimeError("run migrations through `personabot db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=None,
    # SQLite cannot ALTER most things; batch mode recreates tables when a later revision needs it.
    render_as_batch=connection.dialect.name == "sqlite",
    # The caller already holds the transaction (and the lock that makes concurrent starts safe).
    transactional_ddl=True,
)

with context.begin_transaction():
    context.run_migrations()
