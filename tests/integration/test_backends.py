"""The parts that need a real PostgreSQL or Redis server: run for real when TEST_DATABASE_URL /
TEST_REDIS_URL are set (CI sets both), skip with the reason otherwise.

PostgreSQL: these tests make their own database on the server named by TEST_DATABASE_URL
(independent of the suite's default database), so they give the same answer in either pass of
`make test`. Redis: the coordinator's cross-process wake-ups and the gateway's shared limiter.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, SQLModel

from tests.backend.coordinator.jobhelpers import run_concurrently

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
NO_PG = ("TEST_DATABASE_URL not set (CI: postgresql+psycopg://postgres@127.0.0.1:5432/test): "
         "PostgreSQL test skipped")
NO_REDIS = "TEST_REDIS_URL not set (CI: redis://127.0.0.1:6379/0): Redis test skipped"


@pytest.fixture(scope="module")
def pg_engine() -> Iterator:
    if not TEST_DATABASE_URL:
        pytest.skip(NO_PG)
    import psycopg

    from backend.core.config import Settings

    admin_url = TEST_DATABASE_URL.replace("+psycopg", "")
    db = f"openmesh_backends_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
    except psycopg.OperationalError as exc:  # set but unreachable: a broken CI, not a skip
        pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}")
    url = Settings(database_url=TEST_DATABASE_URL.rsplit("/", 1)[0] + f"/{db}").database_url
    engine = create_engine(url, pool_size=25, max_overflow=5)
    import backend.models  # noqa: F401

    SQLModel.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.mark.postgres
def test_postgres_twenty_concurrent_reservations_against_a_balance_for_ten(pg_engine):
    from backend.coordinator.ledger import service
    from backend.core.errors import InsufficientBalance
    from backend.models import Role, User

    assert pg_engine.dialect.name == "postgresql"
    with Session(pg_engine, expire_on_commit=False) as s:
        service.ensure_system_accounts(s)
        user = User(email=f"c-{uuid.uuid4().hex[:8]}@example.com", password_hash="x", role=Role.client)
        s.add(user)
        s.flush()
        uid = int(user.id)
        service.credit(s, user_id=uid, amount=Decimal("10"), memo="t", idempotency_key=f"t:{uid}")
        s.commit()

    def reserve(_: int) -> bool:
        with Session(pg_engine, expire_on_commit=False) as s:
            try:
                service.reserve(s, user_id=uid, amount=Decimal(1))
                s.commit()
                return True
            except InsufficientBalance:
                return False

    results = run_concurrently(20, reserve)
    assert results.count(True) == 10 and results.count(False) == 10, results
    with Session(pg_engine) as s:
        assert service.balances(s, uid) == (Decimal(10), Decimal(10), Decimal(0))
        assert service.verify_invariants(s)["ok"]


@pytest.mark.postgres
def test_postgres_decimal_amounts_round_trip_exactly(pg_engine):
    from backend.coordinator.ledger import service
    from backend.models import Role, User

    with Session(pg_engine, expire_on_commit=False) as s:
        service.ensure_system_accounts(s)
        user = User(email=f"c-{uuid.uuid4().hex[:8]}@example.com", password_hash="x", role=Role.client)
        s.add(user)
        s.flush()
        for i, amount in enumerate(("0.000000001", "123456789.123456789", "0.1", "0.2")):
            service.credit(s, user_id=user.id, amount=Decimal(amount), memo="t",
                           idempotency_key=f"d:{user.id}:{i}")
        s.commit()
        assert service.balances(s, user.id)[0] == Decimal("123456789.423456790")


@pytest.mark.redis
def test_redis_relays_wake_ups_between_coordinator_processes(monkeypatch):
    """An event published by another coordinator (raw on the Redis channel) wakes a local waiter."""
    if not TEST_REDIS_URL:
        pytest.skip(NO_REDIS)
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.fail(f"TEST_REDIS_URL is set but Redis is unreachable: {exc}")
    from backend.coordinator.jobs import notify
    from backend.core.config import get_settings

    prefix = f"openmesh-backends-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    get_settings.cache_clear()

    async def scenario() -> tuple[bool, bool]:
        await notify.start()
        try:
            with notify.subscription(notify.job_topic(4242)) as ev:
                for _ in range(50):  # the listener subscribes asynchronously
                    if notify.redis_ok():
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)
                other = redis.Redis.from_url(TEST_REDIS_URL)
                other.publish(f"{prefix}:events", "job:4242 worker:7")
                woke = await notify.wait(ev, 5)
            with notify.subscription(notify.job_topic(4243)) as quiet:
                stray = await notify.wait(quiet, 0.3)  # nobody published this one
            return woke, stray
        finally:
            await notify.stop()

    # A thread of its own: a session-scoped Playwright browser keeps an event loop running in this one.
    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(1) as pool:
            woke, stray = pool.submit(asyncio.run, scenario()).result(timeout=30)
    finally:
        get_settings.cache_clear()
    assert woke is True
    assert stray is False
