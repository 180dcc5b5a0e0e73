"""Field cases about money: C25 (concurrent debits), C27 (pay once), C28 (exact decimals)."""

from __future__ import annotations

import threading
from decimal import Decimal

from sqlalchemy import func, select

from backend.coordinator.ledger import service
from backend.core.errors import InsufficientBalance
from backend.core.money import Money, fmt
from backend.models import Account, AccountKind, EntryKind, LedgerEntry, Role
from tests.backend.coordinator.jobhelpers import run_concurrently
from tests.backend.coordinator.test_ledger import (
    fund,
    make_db_job,
    make_db_user,
    make_db_worker,
    new_session,
)
from tests.factories import admin_login, make_user

D = Decimal


def test_C25_concurrent_debits(session):
    client = make_db_user(session)
    owner = make_db_user(session, Role.worker_owner)
    worker = make_db_worker(session, owner)
    fund(session, client, "10")
    jobs = [make_db_job(session, client, "1").id for _ in range(20)]
    session.commit()

    def admit_and_settle(i: int) -> str:
        # Each request is its own unit of work on its own connection, as in the coordinator.
        with new_session() as s:
            try:
                service.reserve(s, user_id=client, amount=D(1))
                s.commit()
            except InsufficientBalance:
                s.rollback()
                return "402"
        with new_session() as s:
            from backend.models import Job

            service.settle_job(s, job=s.get(Job, jobs[i]), rewarded_workers=[(worker, owner)])
            s.commit()
        return "200"

    results = run_concurrently(20, admit_and_settle)
    assert sorted(results) == ["200"] * 10 + ["402"] * 10, results
    assert service.balances(session, client) == (D(0), D(0), D(0))
    assert service.verify_invariants(session) == {"ok": True, "problems": []}

    # Two concurrent debits of 50 against 1000 end at 900.
    other = make_db_user(session)
    fund(session, other, "1000")
    big = [make_db_job(session, other, "50").id for _ in range(2)]
    session.commit()

    def debit(i: int) -> None:
        with new_session() as s:
            from backend.models import Job

            service.reserve(s, user_id=other, amount=D(50))
            service.settle_job(s, job=s.get(Job, big[i]), rewarded_workers=[(worker, owner)])
            s.commit()

    assert run_concurrently(2, debit) == [None, None]
    assert service.balances(session, other) == (D(900), D(0), D(900))
    assert service.verify_invariants(session)["ok"]


def test_C25_concurrent_reserves_never_overdraw(session):
    client = make_db_user(session)
    fund(session, client, "10")
    session.commit()

    def reserve_one(_: int) -> bool:
        with new_session() as s:
            try:
                service.reserve(s, user_id=client, amount=D(1))
                s.commit()
                return True
            except InsufficientBalance:
                return False

    results = run_concurrently(20, reserve_one)
    assert results.count(True) == 10 and results.count(False) == 10
    assert service.balances(session, client) == (D(10), D(10), D(0))


def test_C27_concurrent_settlements_of_one_job_pay_once(session):
    client = make_db_user(session)
    owner = make_db_user(session, Role.worker_owner)
    worker = make_db_worker(session, owner)
    fund(session, client, "5")
    job_id = make_db_job(session, client, "1").id
    service.reserve(session, user_id=client, amount=D(1))
    service.reserve(session, user_id=client, amount=D(2))  # another job's hold must survive
    session.commit()

    def settle(_: int) -> bool:
        with new_session() as s:
            from backend.models import Job

            r = service.settle_job(s, job=s.get(Job, job_id), rewarded_workers=[(worker, owner)])
            s.commit()
            return r.settled_now

    results = run_concurrently(4, settle)
    assert results.count(True) == 1 and results.count(False) == 3, results
    assert service.balances(session, client) == (D(4), D(2), D(2))
    assert service.balances(session, owner)[0] == D("0.9")
    assert service.verify_invariants(session)["ok"]


def test_C28_money_type_round_trips_exactly(session):
    money = Money()
    for text in ("0.3", "12345678.123456789", "0.000000001", "9000000000"):
        stored = money.process_bind_param(D(text), None)
        assert isinstance(stored, int)
        assert money.process_result_value(stored, None) == D(text)
    total = sum((D("0.000001") for _ in range(1_000_000)), D(0))
    assert fmt(money.process_result_value(money.process_bind_param(total, None), None)) == "1"


def test_C28_many_tiny_charges_are_exact(session):
    client = make_db_user(session)
    fund(session, client, "1")
    ids = service.ensure_system_accounts(session)
    acc = service.account_for_user(session, client).id
    for i in range(2000):
        service.post_transaction(session, kind=EntryKind.job_charge, idempotency_key=f"tiny:{i}",
                                 legs=[(acc, D("-0.000001")), (ids[AccountKind.pool], D("0.000001"))])
    session.commit()
    assert service.balances(session, client)[0] == D("0.998")
    pool = session.execute(select(Account.balance).where(Account.kind == AccountKind.pool)).scalar_one()
    assert fmt(pool) == "0.002"
    legs = session.execute(select(func.sum(LedgerEntry.amount))
                           .where(LedgerEntry.account_id == acc)).scalar_one()
    assert legs == D("0.998")
    assert service.verify_invariants(session)["ok"]


def test_C28_balances_over_http_are_exact_strings(coordinator, settings):
    admin = admin_login(coordinator, settings)
    user = make_user(coordinator, "worker_owner")
    # 0.1 three times: as a string, as a JSON number, and as raw JSON text with a float literal
    assert coordinator.post(f"/admin/users/{user.id}/credit", json={"amount": "0.1", "memo": "a"},
                            headers=admin.headers).status_code == 201
    assert coordinator.post(f"/admin/users/{user.id}/credit", json={"amount": 0.1, "memo": "b"},
                            headers=admin.headers).status_code == 201
    r = coordinator.post(f"/admin/users/{user.id}/credit", content=b'{"amount": 0.1, "memo": "c"}',
                         headers={**admin.headers, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["balance"] == "0.3"
    body = coordinator.get("/me/balance", headers=user.headers).json()
    assert body == {"currency": "TOK", "balance": "0.3", "reserved": "0", "available": "0.3"}

    other = make_user(coordinator)
    r = coordinator.post(f"/admin/users/{other.id}/credit",
                         content=b'{"amount": 12345678.123456789, "memo": "x"}',
                         headers={**admin.headers, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == "12345678.123456789"
    assert coordinator.get("/me/balance", headers=other.headers).json()["balance"] == "12345678.123456789"
    ledger = coordinator.get("/me/ledger", headers=other.headers).json()
    assert ledger["items"][0]["amount"] == "12345678.123456789"
    assert isinstance(ledger["items"][0]["amount"], str)


def test_C31_concurrent_submits_and_debits_on_sqlite_never_lock(coordinator, settings):
    """50 client requests (each reserving from the ledger) and their 100 signed submissions, all at once."""
    from tests.backend.coordinator.jobhelpers import INTERNAL, honest_output
    from tests.factories import credit, make_api_key, make_worker

    admin = admin_login(coordinator, settings)
    client_user = make_user(coordinator, "client")
    credit(coordinator, admin, client_user, "10")
    key = make_api_key(coordinator, client_user)
    spec = {"estimated_latency_ms": 10, "max_concurrency": 64}
    workers = [make_worker(coordinator, make_user(coordinator, "worker_owner"), specs=spec) for _ in range(2)]
    n = 50

    def request(i: int):
        return coordinator.post("/internal/jobs", headers=INTERNAL, json={
            "api_key": key, "job_type": "embed", "payload": {"text": f"locked? {i}"}, "wait_seconds": 60})

    requests: list = []
    holder = threading.Thread(target=lambda: requests.extend(run_concurrently(n, request)))
    holder.start()
    items: dict[int, list] = {w.id: [] for w in workers}
    for _ in range(200):  # collect every assignment the 50 jobs produced
        for w in workers:
            r = coordinator.post("/jobs/poll-batch", headers=w.owner.headers,
                                 json={"worker_id": w.id, "max_items": 64, "wait_seconds": 0.2})
            assert r.status_code == 200, r.text
            items[w.id].extend(r.json()["assignments"])
        if all(len(v) == n for v in items.values()):
            break
    assert all(len(v) == n for v in items.values())
    work = [(w, item) for w in workers for item in items[w.id]]

    def submit_one(i: int):
        w, item = work[i]
        body = w.sign(item["assignment_id"], item["nonce"], honest_output(item["job"]))
        return coordinator.post("/jobs/submit", json=body, headers=w.owner.headers)

    submits = run_concurrently(len(work), submit_one)
    holder.join(120)
    assert [getattr(r, "status_code", r) for r in submits] == [200] * (2 * n)
    assert [getattr(r, "status_code", r) for r in requests] == [200] * n
    balance = coordinator.get("/me/balance", headers=client_user.headers).json()
    assert D(balance["balance"]) == D(10) - n * D(settings.min_charge) and balance["reserved"] == "0"
    summary = coordinator.get("/admin/finance/summary", headers=admin.headers).json()
    assert summary["invariant"] == {"ok": True, "problems": []}
