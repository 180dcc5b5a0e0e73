"""Alembic migrations applied at coordinator start (RUN_MIGRATIONS=true, the default).

`upgrade(engine)` runs `alembic upgrade head` inside one transaction. On PostgreSQL that transaction
first takes an advisory lock (`pg_advisory_xact_lock`), so several coordinators starting at once
migrate one after the other: the first applies the revisions, the others then find the schema at head
and do nothing. On SQLite the engine's `BEGIN IMMEDIATE` gives the same serialisation.

A database created before migrations existed (by `SQLModel.metadata.create_all`, the test path and
`RUN_MIGRATIONS=false`) has tables but no `alembic_version`: it gets any missing tables and is stamped
at head instead of failing on "table already exists".
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("openmesh.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant bigint works; this one spells "openmesh-mig" loosely and is used by nothing else.
ADVISORY_LOCK_KEY = 0x6F6D5F6D6967


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_lock(conn: Connection) -> None:
    """Serialise migrations across processes (PostgreSQL; held until the transaction ends)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    from sqlmodel import SQLModel

    import backend.models  # noqa: F401  (registers every table)

    with engine.begin() as conn:
        upgrade_lock(conn)
        tables = set(inspect(conn).get_table_names())
        cfg = alembic_config(conn)
        if "alembic_version" not in tables and tables & set(SQLModel.metadata.tables):
            log.warning("database has tables but no alembic_version (created without migrations): "
                        "creating missing tables and stamping it at %s", revision)
            SQLModel.metadata.create_all(conn)
            command.stamp(cfg, revision)
            return
        before = current_revision(conn)
        command.upgrade(cfg, revision)
        after = current_revision(conn)
        if before != after:
            log.info("database migrated from %s to %s", before or "empty", after)
