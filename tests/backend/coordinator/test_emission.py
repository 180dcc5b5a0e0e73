"""Daily emission: base × uptime × reputation, capped, once per day (C29), and its admin endpoints."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from backend.coordinator.emission import service as emission
from backend.coordinator.ledger import service as ledger
from backend.core.config import get_settings
from backend.core.security import now_utc
from backend.models import EmissionRun, EntryKind, LedgerTransaction, Role, WorkerUptime
from tests.backend.coordinator.test_ledger import make_db_user, make_db_worker, new_session
from tests.factories import admin_login, make_user, make_worker

D = Decimal


# One minute more than a day: the window still holds 1,440 of them if the clock turns a minute
# between seeding and the run.
FULL_DAY = 1441


def add_uptime(session, worker_id: int, minutes: int, now: datetime | None = None) -> None:
    now = (now or now_utc()).replace(second=0, microsecond=0)
    for m in range(minutes):
        session.add(WorkerUptime(worker_id=worker_id, minute=now - timedelta(minutes=m)))
    session.flush()


def test_amount_is_base_times_uptime_times_reputation(session):
    owner = make_db_user(session, Role.worker_owner)
    half = make_db_worker(session, owner, reputation=0.5)
    full = make_db_worker(session, owner, reputation=1.0)
    banned = make_db_worker(session, owner, reputation=1.0, status="banned")
    idle = make_db_worker(session, owner, reputation=1.0)
    add_uptime(session, half, 720)
    add_uptime(session, full, FULL_DAY)
    add_uptime(session, banned, FULL_DAY)
    # a minute older than 24 h does not count
    session.add(WorkerUptime(worker_id=idle, minute=now_utc() - timedelta(hours=25)))
    session.commit()
    result = emission.run_emission(session, trigger="test")
    session.commit()
    assert result["ran"] and result["emitted_tokens"] == "125"  # 100 × 0.5 × 0.5 + 100 × 1 × 1
    paid = {r["worker_id"]: r["amount"] for r in result["per_worker"]}
    assert paid == {half: "25", full: "100", idle: "0"}  # the banned worker is not even listed
    assert ledger.balances(session, owner)[0] == D(125)
    txs = session.execute(select(LedgerTransaction)
                          .where(LedgerTransaction.kind == EntryKind.daily_emission)).scalars()
    keys = {t.idempotency_key: t.worker_id for t in txs}
    today = now_utc().date().isoformat()
    assert keys == {f"emission:{today}:{half}": half, f"emission:{today}:{full}": full}
    assert ledger.verify_invariants(session)["ok"]


def test_total_is_scaled_down_to_the_cap(session, monkeypatch):
    monkeypatch.setenv("EMISSION_CAP_TOKENS", "100")
    monkeypatch.setenv("EMISSION_BASE_TOKENS", "70")
    get_settings.cache_clear()
    owners = [make_db_user(session, Role.worker_owner) for _ in range(3)]
    workers = [make_db_worker(session, o, reputation=r) for o, r in zip(owners, (1.0, 1.0, 0.3), strict=True)]
    for w in workers:
        add_uptime(session, w, FULL_DAY)
    session.commit()
    result = emission.run_emission(session)
    session.commit()
    amounts = [D(r["amount"]) for r in result["per_worker"]]
    # raw 70 + 70 + 21 = 161 > 100: each × 100/161, rounded down to the nano-token
    assert amounts == [D("43.478260869"), D("43.478260869"), D("13.043478260")]
    assert sum(amounts) <= D(100) and D(result["emitted_tokens"]) == sum(amounts)
    run = session.execute(select(EmissionRun)).scalar_one()
    assert run.cap == D(100) and run.emitted == sum(amounts)


def test_second_run_same_day_pays_nothing(session):
    owner = make_db_user(session, Role.worker_owner)
    w = make_db_worker(session, owner, reputation=1.0)
    add_uptime(session, w, 60)
    session.commit()
    first = emission.run_emission(session, trigger="manual")
    session.commit()
    second = emission.run_emission(session, trigger="schedule")
    session.commit()
    assert first["ran"] and not second["ran"] and second["emitted_tokens"] == "0"
    assert "already ran" in second["message"]
    assert ledger.balances(session, owner)[0] == D(100) * 60 / 1440 // D("0.000000001") * D("0.000000001")
    # another day pays again
    tomorrow = emission.run_emission(session, day=now_utc().date() + timedelta(days=1))
    session.commit()
    assert tomorrow["ran"]


def test_C29_emission_once_per_day(session):
    owner = make_db_user(session, Role.worker_owner)
    w = make_db_worker(session, owner, reputation=1.0)
    add_uptime(session, w, FULL_DAY)
    session.commit()
    day = date(2030, 1, 2)
    n = 4
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def go(i: int) -> None:
        barrier.wait()
        try:
            # As separate processes would: each its own session (factory), committing its own work.
            results[i] = emission.run_emission(new_session, day=day, trigger=f"proc-{i}")
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["ran"] for r in results) == 1, results
    assert ledger.balances(session, owner)[0] == D(100)
    assert session.execute(select(func.count()).select_from(EmissionRun)).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(LedgerTransaction)
                           .where(LedgerTransaction.kind == EntryKind.daily_emission)).scalar_one() == 1
    session.rollback()  # end the read transaction (SQLite: BEGIN IMMEDIATE holds the write lock)
    # and the scheduler's entry point on a day that already ran pays nothing more either
    again = emission.run_emission(new_session, day=day, trigger="schedule")
    assert not again["ran"]


def test_scheduled_emission_uses_its_own_session(session):
    owner = make_db_user(session, Role.worker_owner)
    w = make_db_worker(session, owner, reputation=1.0)
    add_uptime(session, w, FULL_DAY)
    session.commit()
    assert emission.scheduled_emission()["ran"]
    assert not emission.scheduled_emission()["ran"]
    assert ledger.balances(session, owner)[0] == D(100)
    assert session.execute(select(EmissionRun.trigger)).scalar_one() == "schedule"


def test_next_run_at(settings):
    now = datetime(2030, 5, 1, 0, 4)
    assert emission.next_run_at(now, settings) == datetime(2030, 5, 1, 0, 5)
    assert emission.next_run_at(datetime(2030, 5, 1, 0, 5), settings) == datetime(2030, 5, 2, 0, 5)


def test_emission_endpoints(coordinator, settings):
    admin = admin_login(coordinator, settings)
    owner = make_user(coordinator, "worker_owner")
    worker = make_worker(coordinator, owner)  # its heartbeat records an uptime minute
    with new_session() as s:
        have = s.execute(select(func.count()).select_from(WorkerUptime)
                         .where(WorkerUptime.worker_id == worker.id)).scalar_one()
        if not have:
            add_uptime(s, worker.id, 1)
        s.commit()

    assert coordinator.get("/admin/emission/status", headers=owner.headers).status_code == 403
    assert coordinator.post("/admin/emission/run-now", headers=owner.headers).status_code == 403

    status = coordinator.get("/admin/emission/status", headers=admin.headers).json()
    assert status["date"] == now_utc().date().isoformat()
    assert status["cap_tokens"] == "1000" and status["emitted_today_tokens"] == "0"
    assert status["remaining_tokens"] == "1000" and status["last_run"] is None
    assert status["per_worker_source"] == "preview" and status["next_run_at"]
    preview = {r["worker_id"]: r for r in status["per_worker"]}
    assert D(preview[worker.id]["amount"]) > 0

    r = coordinator.post("/admin/emission/run-now", headers=admin.headers)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["ran"] is True and D(run["emitted_tokens"]) > 0 and run["date"] == status["date"]
    keys = {"worker_id", "name", "owner_user_id", "uptime_ratio", "reputation", "amount"}
    assert keys <= set(run["per_worker"][0])

    again = coordinator.post("/admin/emission/run-now", headers=admin.headers).json()
    assert again["ran"] is False and again["emitted_tokens"] == "0" and "already ran" in again["message"]

    status = coordinator.get("/admin/emission/status", headers=admin.headers).json()
    assert status["per_worker_source"] == "run"
    assert status["emitted_today_tokens"] == run["emitted_tokens"]
    assert D(status["remaining_tokens"]) == D(1000) - D(run["emitted_tokens"])
    assert status["last_run"]["trigger"] == "manual"
    balance = coordinator.get("/me/balance", headers=owner.headers).json()["balance"]
    assert balance == run["emitted_tokens"]
    items = coordinator.get("/me/ledger?kind=daily_emission", headers=owner.headers).json()["items"]
    assert len(items) == 1 and items[0]["worker_id"] == worker.id


def test_next_days_run_does_not_pay_the_same_minutes_again(session):
    owner = make_db_user(session, Role.worker_owner)
    worker = make_db_worker(session, owner, reputation=1.0)
    evening = datetime(2026, 12, 3, 23, 50, tzinfo=UTC)
    add_uptime(session, worker, 60, now=evening)  # 22:51 .. 23:50
    session.commit()
    first = emission.run_emission(session, trigger="test", now=evening)
    session.commit()
    assert first["date"] == "2026-12-03" and first["per_worker"][0]["uptime_minutes"] == 60
    morning = datetime(2026, 12, 4, 0, 10, tzinfo=UTC)
    add_uptime(session, worker, 15, now=morning)  # 23:56 .. 00:10: only these are new
    session.commit()
    second = emission.run_emission(session, trigger="test", now=morning)
    session.commit()
    assert second["date"] == "2026-12-04" and second["per_worker"][0]["uptime_minutes"] == 15
    assert ledger.verify_invariants(session)["ok"]
