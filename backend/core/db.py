"""Engine factory (SQLite by default, PostgreSQL when DATABASE_URL says so) and sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import lru_cache

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from backend.core.config import get_settings

READ_ONLY = "openmesh_read_only"
"""Execution option for a transaction that only reads: on SQLite it begins DEFERRED (no write lock).
Use `read_only(session)` before the first query of such a transaction."""
_HOLDS_WRITER = "openmesh_holds_writer_lock"


def _json_dumps(value: object) -> str:
    # JSON columns hold 384-float outputs on the hot path; orjson writes the same text several times faster.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_JSON = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if ":memory:" in url:
            from sqlalchemy.pool import StaticPool

            engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool, **_JSON)
        else:
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                   pool_size=20, max_overflow=20, **_JSON)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers run beside the single writer; busy_timeout makes writers queue
            # instead of failing with "database is locked".
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        # SQLite has one writer at a time. Writers of this process queue on an in-process lock
        # first: sqlite's own busy handler sleeps 1, 2, 5 ... 100 ms between retries, so under
        # contention most of a request's time went to sleeping while the database was free.
        # (Other processes still meet busy_timeout; the lock is only a faster queue. The in-memory
        # test database shares one connection, where a lock would only turn errors into waits.)
        writer = threading.Lock() if ":memory:" not in url else None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get(READ_ONLY):
                # WAL readers never wait for the writer: a plain (deferred) BEGIN takes no lock.
                conn.exec_driver_sql("BEGIN")
                return
            # Take the write lock at BEGIN so read-then-write transactions never deadlock on upgrade.
            if writer is not None:
                conn.info[_HOLDS_WRITER] = writer.acquire(timeout=30)
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _end(conn, None)
                raise

        def _end(conn, statement):  # type: ignore[no-untyped-def]
            # Finish the transaction here, then let the next writer in (the "commit"/"rollback"
            # events fire before SQLAlchemy's own DBAPI call, which is then a no-op).
            try:
                if statement is not None and conn.connection.dbapi_connection.in_transaction:
                    conn.connection.dbapi_connection.execute(statement)
            finally:
                _let_go(conn.info)

        def _let_go(info):  # type: ignore[no-untyped-def]
            if info.pop(_HOLDS_WRITER, False) and writer is not None:
                writer.release()

        event.listen(engine, "commit", lambda conn: _end(conn, "COMMIT"))
        event.listen(engine, "rollback", lambda conn: _end(conn, "ROLLBACK"))
        # A connection returned to the pool (or dropped) mid-transaction is rolled back by the pool
        # without a Connection event: release the writer lock there too.
        @event.listens_for(engine, "reset")
        def _on_reset(_dbapi_connection, connection_record, _reset_state):  # type: ignore[no-untyped-def]
            _let_go(connection_record.info)

        @event.listens_for(engine, "invalidate")
        def _on_invalidate(_dbapi_connection, connection_record, _exception):  # type: ignore[no-untyped-def]
            _let_go(connection_record.info)

        # pysqlite's own transaction handling must be off for the explicit BEGIN above.
        @event.listens_for(engine, "connect", insert=True)
        def _no_autobegin(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, **_JSON)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


def init_db(engine: Engine | None = None) -> None:
    """Bring the schema to the models' shape.

    RUN_MIGRATIONS=true (the default): `alembic upgrade head` (backend/migrations) under a PostgreSQL
    advisory lock, so several coordinators starting at once never race (backend.core.migrate).
    RUN_MIGRATIONS=false: `SQLModel.metadata.create_all` (the test suite's fast path).
    """
    import backend.models  # noqa: F401  (registers every table)

    engine = engine or get_engine()
    if get_settings().run_migrations:
        from backend.core.migrate import upgrade

        upgrade(engine)
    else:
        SQLModel.metadata.create_all(engine)


def read_only(session: Session) -> Session:
    """Begin the session's next transaction as read-only.

    SQLite: a deferred BEGIN, no write lock. PostgreSQL: autocommit, each read its own statement
    without BEGIN and COMMIT round trips (these readers never need two reads from one snapshot).
    """
    if not session.in_transaction():
        options: dict[str, object] = {READ_ONLY: True}
        if session.get_bind().dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        session.connection(execution_options=options)
    return session


def get_session() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session
