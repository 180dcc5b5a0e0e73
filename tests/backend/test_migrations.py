"""Alembic migrations (backend/migrations): the migrated schema equals the models, on SQLite and on
PostgreSQL; concurrent starts do not race (advisory lock); old create_all databases get stamped."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import backend.models  # noqa: F401
from backend.core import migrate
from backend.core.config import get_settings
from backend.core.db import init_db, make_engine

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "")


def _diff(engine: Engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return compare_metadata(ctx, SQLModel.metadata)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine_factory() -> Iterator:
    """Engines on one fresh PostgreSQL database of this test's own (dropped afterwards)."""
    if not PG_ADMIN_URL:
        pytest.skip("TEST_DATABASE_URL not set: PostgreSQL migration checks need a server")
    import psycopg

    name = f"openmesh_mig_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engines: list[Engine] = []

    def factory() -> Engine:
        engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_one_head_and_it_is_the_initial_revision_or_later():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    heads = script.get_heads()
    assert len(heads) == 1, f"several alembic heads (merge them): {heads}"
    assert [r.revision for r in script.walk_revisions()][-1] == "0001_initial"


def test_migrated_sqlite_schema_equals_models(sqlite_engine):
    migrate.upgrade(sqlite_engine)
    assert _diff(sqlite_engine) == []
    with sqlite_engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()


def test_migrated_postgres_schema_equals_models(pg_engine_factory):
    engine = pg_engine_factory()
    migrate.upgrade(engine)
    assert _diff(engine) == []
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_downgrade_to_base_then_upgrade_again(dialect, sqlite_engine, request):
    engine = sqlite_engine if dialect == "sqlite" else request.getfixturevalue("pg_engine_factory")()
    migrate.upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert _diff(engine) == []


def test_upgrade_twice_is_a_no_op(sqlite_engine):
    migrate.upgrade(sqlite_engine)
    migrate.upgrade(sqlite_engine)
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_database_made_by_create_all_is_stamped_not_recreated(sqlite_engine):
    SQLModel.metadata.create_all(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(text("INSERT INTO user (email, password_hash, role, is_active, created_at) "
                          "VALUES ('keep@example.com', 'x', 'client', 1, '2026-01-01 00:00:00')"))
    migrate.upgrade(sqlite_engine)
    with sqlite_engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        assert conn.execute(text("SELECT email FROM user")).scalar_one() == "keep@example.com"
    assert _diff(sqlite_engine) == []


def test_init_db_applies_migrations_when_run_migrations_is_on(sqlite_engine, monkeypatch):
    monkeypatch.setenv("RUN_MIGRATIONS", "true")
    get_settings.cache_clear()
    try:
        init_db(sqlite_engine)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    with sqlite_engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()


def test_concurrent_postgres_upgrades_do_not_race(pg_engine_factory):
    """Six 'coordinators' start at once on an empty database: the advisory lock serialises them."""
    engines = [pg_engine_factory() for _ in range(6)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        barrier.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    assert _diff(engines[0]) == []
