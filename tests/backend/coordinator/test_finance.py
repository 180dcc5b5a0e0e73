"""Ledger HTTP routes: balance, ledger pages, admin credit, finance summary, leaderboard."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, text

from backend.coordinator.ledger import service
from backend.models import AdminAction, Job, Worker
from tests.backend.coordinator.test_ledger import make_db_job, new_session
from tests.factories import admin_login, credit, make_user, make_worker

D = Decimal


def _credit(client, admin, user_id, body):
    return client.post(f"/admin/users/{user_id}/credit", json=body, headers=admin.headers)


def test_balance_of_a_new_user_is_zero(coordinator):
    user = make_user(coordinator)
    r = coordinator.get("/me/balance", headers=user.headers)
    assert r.status_code == 200
    assert r.json() == {"currency": "TOK", "balance": "0", "reserved": "0", "available": "0"}
    assert coordinator.get("/me/ledger", headers=user.headers).json() == {
        "items": [], "total": 0, "limit": 50, "offset": 0}
    assert coordinator.get("/me/balance").status_code == 401


def test_admin_credit_rules(coordinator, settings):
    admin = admin_login(coordinator, settings)
    user = make_user(coordinator)
    r = _credit(coordinator, admin, user.id, {"amount": "12.5", "memo": "welcome"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] == user.id and body["amount"] == "12.5" and body["balance"] == "12.5"
    assert isinstance(body["transaction_id"], int)
    assert _credit(coordinator, admin, user.id, {"amount": 3, "memo": "int"}).json()["balance"] == "15.5"

    for bad in ("0", "-1", "0.0000000001", "abc", "NaN", "Infinity", "1e400", True, None, "1000000001"):
        r = _credit(coordinator, admin, user.id, {"amount": bad, "memo": "x"})
        assert r.status_code == 422, (bad, r.text)
    assert _credit(coordinator, admin, 999_999, {"amount": "1"}).status_code == 404
    assert _credit(coordinator, admin, admin.id, {"amount": "1"}).status_code == 422
    assert _credit(coordinator, user, user.id, {"amount": "1"}).status_code == 403

    with new_session() as s:
        actions = s.execute(select(AdminAction).where(AdminAction.action == "credit")).scalars().all()
        assert len(actions) == 2
        assert all(a.actor_user_id == admin.id and a.target_id == user.id for a in actions)
    assert coordinator.get("/me/balance", headers=user.headers).json()["balance"] == "15.5"


def test_admin_credit_idempotency_key(coordinator, settings):
    admin = admin_login(coordinator, settings)
    user = make_user(coordinator)
    body = {"amount": "5", "memo": "once", "idempotency_key": "grant-42"}
    first = _credit(coordinator, admin, user.id, body)
    second = _credit(coordinator, admin, user.id, body)
    assert first.status_code == second.status_code == 201
    assert second.json()["transaction_id"] == first.json()["transaction_id"] and second.json()["replayed"]
    assert second.json()["balance"] == "5"
    other = make_user(coordinator)
    assert _credit(coordinator, admin, other.id, body).status_code == 409
    assert _credit(coordinator, admin, user.id, {**body, "amount": "6"}).status_code == 409


def test_ledger_pages_newest_first_and_filter(coordinator, settings):
    admin = admin_login(coordinator, settings)
    user = make_user(coordinator)
    for i in range(1, 6):
        credit(coordinator, admin, user, str(i))
    # one charged job, settled through the service
    with new_session() as s:
        job = make_db_job(s, user.id, "2")
        service.reserve(s, user_id=user.id, amount=D(2))
        service.settle_job(s, job=job, rewarded_workers=[])
        s.commit()
        job_id = job.id
    page = coordinator.get("/me/ledger?limit=2", headers=user.headers).json()
    assert page["total"] == 6 and page["limit"] == 2 and page["offset"] == 0
    first = page["items"][0]
    assert first["kind"] == "job_charge" and first["amount"] == "-2" and first["job_id"] == job_id
    assert set(first) == {"id", "transaction_id", "kind", "amount", "job_id", "worker_id", "memo",
                          "created_at"}
    assert page["items"][1]["amount"] == "5"
    rest = coordinator.get("/me/ledger?limit=10&offset=2", headers=user.headers).json()["items"]
    assert [i["amount"] for i in rest] == ["4", "3", "2", "1"]
    credits = coordinator.get("/me/ledger?kind=admin_credit", headers=user.headers).json()
    assert credits["total"] == 5 and {i["kind"] for i in credits["items"]} == {"admin_credit"}
    assert coordinator.get("/me/ledger?kind=bogus", headers=user.headers).status_code == 422
    assert coordinator.get("/me/ledger?limit=0", headers=user.headers).status_code == 422
    assert coordinator.get("/me/balance", headers=user.headers).json()["balance"] == "13"


def test_finance_summary_adds_up(coordinator, settings):
    admin = admin_login(coordinator, settings)
    client = make_user(coordinator)
    o1, o2 = make_user(coordinator, "worker_owner"), make_user(coordinator, "worker_owner")
    w1, w2 = make_worker(coordinator, o1), make_worker(coordinator, o2)
    credit(coordinator, admin, client, "10")
    with new_session() as s:
        jobs = [make_db_job(s, client.id, "1") for _ in range(3)]
        service.reserve(s, user_id=client.id, amount=D(3))
        for job in jobs[:2]:
            service.settle_job(s, job=job, rewarded_workers=[(w1.id, o1.id), (w2.id, o2.id)])
        s.commit()  # the third job is still reserved
    assert coordinator.get("/admin/finance/summary", headers=client.headers).status_code == 403

    r = coordinator.get("/admin/finance/summary", headers=admin.headers)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["currency"] == "TOK"
    assert f["totals_by_kind"] == {"admin_credit": "10", "job_charge": "2", "pool_fee": "0.2",
                                   "worker_reward": "1.8",
                                   "refund": "0", "daily_emission": "0"}
    assert f["pool_balance_tokens"] == "0.2"
    assert f["client_balances_total"] == "8" and f["owner_balances_total"] == "1.8"
    assert f["outstanding_reservations"] == "1" and f["supply_minted"] == "10" and f["jobs_charged"] == 2
    assert f["invariant"] == {"ok": True, "problems": []}
    assert D(f["pool_balance_tokens"]) + D(f["owner_balances_total"]) == D(f["totals_by_kind"]["job_charge"])

    with new_session() as s:  # tamper with a cached balance: the summary must say so
        s.execute(text("UPDATE account SET balance = balance + 1 WHERE user_id = :u"), {"u": o1.id})
        s.commit()
    f = coordinator.get("/admin/finance/summary", headers=admin.headers).json()
    assert f["invariant"]["ok"] is False and f["invariant"]["problems"]


def test_leaderboard_order_and_earnings(coordinator, settings):
    admin = admin_login(coordinator, settings)
    client = make_user(coordinator)
    owner = make_user(coordinator, "worker_owner")
    a, b, c = (make_worker(coordinator, owner, name=n) for n in ("alpha", "bravo", "charlie"))
    credit(coordinator, admin, client, "10")
    with new_session() as s:
        for wid, verified, rep in ((a.id, 5, 0.6), (b.id, 5, 0.9), (c.id, 7, 0.1)):
            w = s.get(Worker, wid)
            w.verified_count, w.reputation = verified, rep
            s.add(w)
        job = make_db_job(s, client.id, "1")
        service.reserve(s, user_id=client.id, amount=D(1))
        service.settle_job(s, job=job, rewarded_workers=[(a.id, owner.id), (b.id, owner.id)])
        s.commit()
    assert coordinator.get("/admin/leaderboard", headers=owner.headers).status_code == 403
    r = coordinator.get("/admin/leaderboard", headers=admin.headers)
    assert r.status_code == 200, r.text
    rows = r.json()["workers"]
    assert [w["name"] for w in rows] == ["charlie", "bravo", "alpha"]
    top = rows[1]
    assert {"worker_id", "name", "owner_user_id", "status", "reputation", "verified_count", "rejected_count",
            "earnings"} <= set(top)
    assert top["earnings"] == "0.45" and rows[0]["earnings"] == "0" and top["owner_user_id"] == owner.id
    assert len(coordinator.get("/admin/leaderboard?limit=1", headers=admin.headers).json()["workers"]) == 1


def test_job_model_price_round_trip(session):
    job = make_db_job(session, None, "0.000000001")
    session.commit()
    assert session.get(Job, job.id).price == D("0.000000001")


def test_spend_per_key_and_day_and_earnings_per_worker(coordinator, settings):
    admin = admin_login(coordinator, settings)
    client = make_user(coordinator)
    owner = make_user(coordinator, "worker_owner")
    w1, w2 = make_worker(coordinator, owner, name="earner-1"), make_worker(coordinator, owner, name="earner-2")
    credit(coordinator, admin, client, "10")
    keys = [coordinator.post("/auth/api-keys", json={"name": n}, headers=client.headers).json()
            for n in ("app-a", "app-b")]
    with new_session() as s:
        for key, price, n in ((keys[0], "0.5", 2), (keys[1], "0.25", 1)):
            for _ in range(n):
                job = make_db_job(s, client.id, price)
                job.api_key_id = key["id"]
                service.reserve(s, user_id=client.id, amount=D(price))
                service.settle_job(s, job=job, rewarded_workers=[(w1.id, owner.id), (w2.id, owner.id)])
        s.commit()

    r = coordinator.get("/me/spend", headers=client.headers)
    assert r.status_code == 200, r.text
    spend = r.json()
    assert spend["total"] == "1.25" and spend["jobs"] == 3
    assert [(k["name"], k["prefix"], k["jobs"], k["amount"]) for k in spend["per_key"]] == [
        ("app-a", keys[0]["prefix"], 2, "1"), ("app-b", keys[1]["prefix"], 1, "0.25")]
    from backend.core.security import now_utc

    assert spend["per_day"] == [{"date": now_utc().date().isoformat(), "jobs": 3, "amount": "1.25"}]
    assert coordinator.get("/me/spend", params={"days": 0}, headers=client.headers).status_code == 422
    assert coordinator.get("/me/spend").status_code == 401

    r = coordinator.get("/me/earnings", headers=owner.headers)
    assert r.status_code == 200, r.text
    earned = r.json()
    # 1.25 charged, 10% pool fee, the rest split evenly between the two verified workers of this owner.
    assert earned["total"] == "1.125"
    assert [(w["name"], w["rewarded_jobs"], w["rewards"], w["emission"]) for w in earned["per_worker"]] == [
        ("earner-1", 3, "0.5625", "0"), ("earner-2", 3, "0.5625", "0")]
    assert D(earned["total"]) == D(coordinator.get("/me/balance", headers=owner.headers).json()["balance"])
    assert coordinator.get("/me/earnings", headers=client.headers).json() == {
        "currency": "TOK", "total": "0", "per_worker": []}
