"""Test environment: set before the app is imported; a fresh database per test; client fixtures.

The database is SQLite (a temp file) unless TEST_DATABASE_URL names a PostgreSQL server, in which
case this run creates its own database there and drops it at the end. REDIS tests use
TEST_REDIS_URL with a per-run key prefix.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

_RUN_ID = uuid.uuid4().hex[:8]
_TMP = Path(tempfile.mkdtemp(prefix=f"openmesh-test-{_RUN_ID}-"))
_PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "")
_PG_DB = f"openmesh_test_{_RUN_ID}"


def _pg_url(db: str) -> str:
    base = _PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{db}"


if _PG_ADMIN_URL:
    import psycopg

    with psycopg.connect(_PG_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{_PG_DB}"')
    os.environ["DATABASE_URL"] = _pg_url(_PG_DB)
else:
    os.environ["DATABASE_URL"] = f"sqlite:///{_TMP / 'test.db'}"

os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("JWT_SECRET", "test-secret-" + "x" * 40)
os.environ.setdefault("COORDINATOR_INTERNAL_TOKEN", "test-internal-token")
os.environ.setdefault("ADMIN_EMAIL", "admin@test.local")
os.environ.setdefault("ADMIN_PASSWORD", "admin-test-password-123")
os.environ.setdefault("SCHEDULER_ENABLED", "false")
# The schema comes from create_all (fast); tests/backend/test_migrations.py checks the migrations match it.
os.environ.setdefault("RUN_MIGRATIONS", "false")
os.environ.setdefault("AUDIT_RATE", "0")
# Factories log in many users from one test address; tests of the limits set their own.
os.environ.setdefault("RATE_LIMIT_LOGIN_PER_MINUTE", "100000")
os.environ.setdefault("RATE_LIMIT_PER_MINUTE_IP", "100000")
os.environ.setdefault("RATE_LIMIT_PER_MINUTE_API_KEY", "100000")
os.environ.setdefault("REDIS_PREFIX", f"openmesh-test-{_RUN_ID}")
os.environ.pop("REDIS_URL", None)
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

from backend.core.config import get_settings  # noqa: E402
from backend.core.db import get_engine, init_db  # noqa: E402


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    if _PG_ADMIN_URL:
        get_engine().dispose()
        import psycopg

        with psycopg.connect(_PG_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_PG_DB}" WITH (FORCE)')


def _reset_database() -> None:
    engine = get_engine()
    init_db(engine)
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))
            conn.execute(text("DELETE FROM sqlite_sequence")) if _has_sqlite_sequence(conn) else None


def _has_sqlite_sequence(conn) -> bool:
    return bool(conn.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first())


@pytest.fixture(autouse=True)
def _fresh_db(request) -> Iterator[None]:
    if request.node.get_closest_marker("e2e"):
        yield
        return
    get_settings.cache_clear()
    _reset_database()
    yield


@pytest.fixture
def settings():
    return get_settings()


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as s:
        yield s


@pytest.fixture
def coordinator() -> Iterator[TestClient]:
    """The coordinator app, with its lifespan run (schema, admin account, system accounts)."""
    from backend.coordinator.main import create_app

    from tests.backend.coordinator.jobhelpers import BackgroundRequest

    with TestClient(create_app()) as client:
        try:
            yield client
        finally:
            BackgroundRequest.join_all()


@pytest.fixture
def pg_available() -> bool:
    return bool(_PG_ADMIN_URL)
