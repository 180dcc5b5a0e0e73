"""Alembic environment: the target is SQLModel.metadata (every table in backend/models).

Two ways in:
- `backend.core.migrate.upgrade(engine)` (what the coordinator runs at start) passes an open
  connection in `config.attributes["connection"]`, inside a transaction that already holds the
  PostgreSQL advisory lock, so concurrent starts never race;
- the `alembic` command line (`alembic upgrade head`, `alembic revision --autogenerate -m ...`) uses
  DATABASE_URL from the settings (backend.core.config), like the services do.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import backend.models  # noqa: F401  (registers every table on SQLModel.metadata)

target_metadata = SQLModel.metadata


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    from backend.core.config import get_settings

    context.configure(url=get_settings().database_url, target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from backend.core.db import get_engine
    from backend.core.migrate import upgrade_lock

    with get_engine().begin() as conn:
        upgrade_lock(conn)
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
