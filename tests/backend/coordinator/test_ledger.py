"""The ledger service: accounts, postings, reservations, settlement, invariants, pricing."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session

from backend.coordinator.ledger import pricing, service
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.errors import InsufficientBalance, NotFound
from backend.core.security import now_utc
from backend.models import (
    Account,
    AccountKind,
    EntryKind,
    Job,
    JobType,
    LedgerEntry,
    LedgerTransaction,
    Role,
    User,
    Worker,
)

D = Decimal


# -- helpers shared with the other money tests ---------------------------------------------------------

def new_session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def make_db_user(session: Session, role: Role = Role.client) -> int:
    user = User(email=f"{role.value}-{uuid.uuid4().hex[:10]}@example.com", password_hash="x", role=role)
    session.add(user)
    session.flush()
    return int(user.id)  # type: ignore[arg-type]


def make_db_worker(session: Session, owner_id: int, *, reputation: float = 0.9, status: str = "online",
                   verified: int = 0) -> int:
    worker = Worker(name=f"w-{uuid.uuid4().hex[:8]}", owner_user_id=owner_id, reputation=reputation,
                    status=status, verified_count=verified)
    session.add(worker)
    session.flush()
    return int(worker.id)  # type: ignore[arg-type]


def make_db_job(session: Session, client_id: int | None, price: str | Decimal, units: int = 1) -> Job:
    job = Job(job_type=JobType.embed, payload={"text": "x"}, client_user_id=client_id, price=D(price),
              units=units, deadline_at=now_utc() + timedelta(minutes=5))
    session.add(job)
    session.flush()
    return job


def fund(session: Session, user_id: int, amount: str) -> None:
    service.credit(session, user_id=user_id, amount=D(amount), memo="test",
                   idempotency_key=f"t:{uuid.uuid4().hex}")


def system_balance(session: Session, kind: AccountKind) -> Decimal:
    return session.execute(select(Account.balance).where(Account.kind == kind)).scalar_one()


# -- pricing -------------------------------------------------------------------------------------------

def test_pricing_units_and_minimum(settings):
    assert pricing.price_job("embed", {"text": ""}, settings) == (1, D("0.001"))
    assert pricing.price_job("embed", {"text": "a" * 1000}, settings) == (1, D("0.001"))
    assert pricing.price_job("embed", {"text": "a" * 1001}, settings) == (2, D("0.002"))
    # rank counts the query and every text
    assert pricing.price_job(JobType.rank, {"query": "q" * 500, "texts": ["a" * 600, "b" * 1000]},
                             settings) == (3, D("0.003"))


def test_pricing_min_charge_and_quantize(monkeypatch):
    monkeypatch.setenv("MIN_CHARGE", "0.5")
    monkeypatch.setenv("UNIT_COST_EMBED", "0.0000000015")  # below the ledger precision per unit
    get_settings.cache_clear()
    s = get_settings()
    assert pricing.price_job("embed", {"text": "x"}, s) == (1, D("0.5"))
    monkeypatch.setenv("MIN_CHARGE", "0")
    get_settings.cache_clear()
    units, price = pricing.price_job("embed", {"text": "x" * 3000}, get_settings())
    assert units == 3 and price == D("0.000000004")  # 4.5e-9 rounded down


def test_pricing_rejects_unknown_type(settings):
    with pytest.raises(ValueError):
        pricing.price_job("translate", {"text": "x"}, settings)


# -- accounts ------------------------------------------------------------------------------------------

def test_system_accounts_idempotent(session):
    first = service.ensure_system_accounts(session)
    session.commit()
    second = service.ensure_system_accounts(session)
    session.commit()
    assert first == second and set(first) == {AccountKind.pool, AccountKind.clearing, AccountKind.issuance}
    assert session.execute(select(func.count()).select_from(Account)).scalar_one() == 3


def test_account_for_user_get_or_create(session):
    uid = make_db_user(session)
    a = service.account_for_user(session, uid)
    b = service.account_for_user(session, uid)
    session.commit()
    assert a.id == b.id and a.kind == AccountKind.user
    with pytest.raises(NotFound):
        service.account_for_user(session, 999_999)


# -- posting -------------------------------------------------------------------------------------------

def test_credit_is_idempotent_per_key(session):
    uid = make_db_user(session)
    t1 = service.credit(session, user_id=uid, amount=D("5"), memo="m", idempotency_key="k1")
    t2 = service.credit(session, user_id=uid, amount=D("5"), memo="m", idempotency_key="k1")
    session.commit()
    assert t1.id == t2.id
    assert service.balances(session, uid) == (D(5), D(0), D(5))
    assert system_balance(session, AccountKind.issuance) == D(-5)
    assert service.verify_invariants(session)["ok"]


def test_duplicate_key_does_not_poison_the_outer_transaction(session):
    uid = make_db_user(session)
    service.credit(session, user_id=uid, amount=D("1"), idempotency_key="dup")
    session.commit()
    # A fresh session does not see the key in its identity map: the insert hits the unique constraint.
    with new_session() as s2:
        make_db_user(s2)  # earlier work in the same unit of work must survive
        tx, created = service._post(
            s2, kind=EntryKind.admin_credit, idempotency_key="dup",
            legs=[(service.ensure_system_accounts(s2)[AccountKind.issuance], D(-1)),
                  (service.account_for_user(s2, uid).id, D(1))])
        assert not created
        fund(s2, uid, "2")
        s2.commit()
    assert service.balances(session, uid)[0] == D(3)
    assert session.execute(select(func.count()).select_from(User)).scalar_one() == 2


def test_duplicate_key_race_inside_savepoint(session):
    """The IntegrityError path itself: bypass the pre-check so the insert collides."""
    uid = make_db_user(session)
    service.credit(session, user_id=uid, amount=D("1"), idempotency_key="race")
    session.commit()
    with new_session() as s2:
        original = service._tx_by_key
        calls = []

        def miss_once(sess, key):
            calls.append(key)
            return None if len(calls) == 1 else original(sess, key)

        service._tx_by_key = miss_once  # type: ignore[assignment]
        try:
            tx = service.credit(s2, user_id=uid, amount=D("1"), idempotency_key="race")
        finally:
            service._tx_by_key = original  # type: ignore[assignment]
        assert tx.idempotency_key == "race"
        fund(s2, uid, "1")
        s2.commit()
    assert service.balances(session, uid)[0] == D(2)
    assert service.verify_invariants(session)["ok"]


def test_unbalanced_legs_are_refused(session):
    ids = service.ensure_system_accounts(session)
    with pytest.raises(ValueError):
        service.post_transaction(session, kind=EntryKind.refund, idempotency_key="bad",
                                 legs=[(ids[AccountKind.pool], D("1")),
                                       (ids[AccountKind.clearing], D("-0.9"))])
    with pytest.raises(ValueError):
        service.post_transaction(session, kind=EntryKind.refund, idempotency_key="float",
                                 legs=[(ids[AccountKind.pool], 0.1), (ids[AccountKind.clearing], -0.1)])


# -- reservations --------------------------------------------------------------------------------------

def test_reserve_and_release(session):
    uid = make_db_user(session)
    fund(session, uid, "10")
    service.reserve(session, user_id=uid, amount=D("7"))
    assert service.balances(session, uid) == (D(10), D(7), D(3))
    with pytest.raises(InsufficientBalance) as exc:
        service.reserve(session, user_id=uid, amount=D("3.000000001"))
    assert exc.value.status_code == 402 and exc.value.detail == "Insufficient balance"
    service.reserve(session, user_id=uid, amount=D("3"))
    service.release(session, user_id=uid, amount=D("4"))
    assert service.balances(session, uid) == (D(10), D(6), D(4))
    service.release(session, user_id=uid, amount=D("100"))  # never below zero
    session.commit()
    assert service.balances(session, uid) == (D(10), D(0), D(10))


def test_reserve_without_funds_is_402(session):
    uid = make_db_user(session)
    with pytest.raises(InsufficientBalance):
        service.reserve(session, user_id=uid, amount=D("0.001"))


# -- settlement ----------------------------------------------------------------------------------------

def _settle_setup(session, price="1"):
    client = make_db_user(session)
    o1, o2 = make_db_user(session, Role.worker_owner), make_db_user(session, Role.worker_owner)
    w1, w2 = make_db_worker(session, o1), make_db_worker(session, o2)
    fund(session, client, "10")
    job = make_db_job(session, client, price)
    service.reserve(session, user_id=client, amount=job.price)
    return client, (o1, w1), (o2, w2), job


def test_settle_job_charges_fee_and_rewards(session):
    client, (o1, w1), (o2, w2), job = _settle_setup(session)
    result = service.settle_job(session, job=job, rewarded_workers=[(w1, o1), (w2, o2)],
                                reserved_amount=job.price)
    session.commit()
    assert result.settled_now and result.charged == D(1) and result.pool_fee == D("0.1")
    assert [r["amount"] for r in result.rewards] == [D("0.45"), D("0.45")]
    assert service.balances(session, client) == (D(9), D(0), D(9))
    assert service.balances(session, o1)[0] == D("0.45") == service.balances(session, o2)[0]
    assert system_balance(session, AccountKind.pool) == D("0.1")
    assert system_balance(session, AccountKind.clearing) == 0
    rewards = session.execute(select(LedgerTransaction).where(
        LedgerTransaction.kind == EntryKind.worker_reward)).scalars().all()
    assert sorted(t.worker_id for t in rewards) == sorted([w1, w2])
    assert {t.idempotency_key for t in rewards} == {f"job:{job.id}:reward:{w1}", f"job:{job.id}:reward:{w2}"}
    assert service.verify_invariants(session) == {"ok": True, "problems": []}


def test_C27_settle_twice_pays_once_and_releases_once(session):
    client, (o1, w1), (o2, w2), job = _settle_setup(session)
    other = make_db_job(session, client, "2")
    service.reserve(session, user_id=client, amount=other.price)  # another job still in flight
    service.settle_job(session, job=job, rewarded_workers=[(w1, o1), (w2, o2)])
    session.commit()
    with new_session() as retry:  # the payout "crashed" and runs again in a new unit of work
        again = service.settle_job(retry, job=retry.get(Job, job.id), rewarded_workers=[(w1, o1), (w2, o2)])
        retry.commit()
    assert not again.settled_now and again.charged == D(1) and len(again.rewards) == 2
    assert service.balances(session, client) == (D(9), D(2), D(7))  # the other job's hold is intact
    assert service.balances(session, o1)[0] == D("0.45")
    n = session.execute(select(func.count()).select_from(LedgerTransaction)
                        .where(LedgerTransaction.job_id == job.id)).scalar_one()
    assert n == 4  # charge, fee, two rewards
    assert service.verify_invariants(session)["ok"]


def test_settle_uneven_split_is_exact(session, monkeypatch):
    monkeypatch.setenv("POOL_FEE_BPS", "333")
    get_settings.cache_clear()
    client = make_db_user(session)
    owners = [make_db_user(session, Role.worker_owner) for _ in range(3)]
    workers = [(make_db_worker(session, o), o) for o in owners]
    fund(session, client, "1")
    job = make_db_job(session, client, "0.000000100")
    service.reserve(session, user_id=client, amount=job.price)
    r = service.settle_job(session, job=job, rewarded_workers=workers)
    session.commit()
    shares = [x["amount"] for x in r.rewards]
    assert r.pool_fee == D("0.000000003")
    assert shares == [D("0.000000033"), D("0.000000032"), D("0.000000032")]
    assert r.pool_fee + sum(shares) == job.price
    assert service.verify_invariants(session)["ok"]


def test_settle_with_owner_ids_only_and_without_workers(session):
    client = make_db_user(session)
    owner = make_db_user(session, Role.worker_owner)
    fund(session, client, "5")
    j1, j2 = make_db_job(session, client, "1"), make_db_job(session, client, "1")
    service.reserve(session, user_id=client, amount=D(2))
    service.settle_job(session, job=j1, rewarded_owner_ids=[owner])
    nobody = service.settle_job(session, job=j2, rewarded_workers=[])
    session.commit()
    assert service.balances(session, owner)[0] == D("0.9")
    assert nobody.pool_fee == D(1) and nobody.rewards == []
    assert system_balance(session, AccountKind.pool) == D("1.1")
    assert service.balances(session, client) == (D(3), D(0), D(3))
    assert service.verify_invariants(session)["ok"]


def test_settle_demo_job_charges_nothing(session):
    job = make_db_job(session, None, "1")
    r = service.settle_job(session, job=job, rewarded_workers=[])
    assert not r.settled_now and r.charged == 0
    assert session.execute(select(func.count()).select_from(LedgerTransaction)).scalar_one() == 0


def test_failed_job_releases_and_charges_nothing(session):
    client = make_db_user(session)
    fund(session, client, "1")
    job = make_db_job(session, client, "0.4")
    service.reserve(session, user_id=client, amount=job.price)
    assert service.balances(session, client)[2] == D("0.6")
    service.release(session, user_id=client, amount=job.price)  # what the job's failure path does
    session.commit()
    assert service.balances(session, client) == (D(1), D(0), D(1))
    assert session.execute(select(func.count()).select_from(LedgerTransaction)
                           .where(LedgerTransaction.job_id == job.id)).scalar_one() == 0


# -- invariants ----------------------------------------------------------------------------------------

def test_invariant_detects_tampered_cached_balance(session):
    client, (o1, w1), (o2, w2), job = _settle_setup(session)
    service.settle_job(session, job=job, rewarded_workers=[(w1, o1), (w2, o2)])
    session.commit()
    assert service.verify_invariants(session)["ok"]
    acc = service.account_for_user(session, client)
    session.execute(text("UPDATE account SET balance = balance + 1000000000 WHERE id = :id"), {"id": acc.id})
    session.commit()
    report = service.verify_invariants(session)
    assert not report["ok"]
    assert any(f"account {acc.id}: cached balance 10 but its legs sum to 9" in p for p in report["problems"])


def test_invariant_detects_unbalanced_and_negative(session):
    uid = make_db_user(session)
    fund(session, uid, "1")
    session.commit()
    entry = session.execute(select(LedgerEntry).where(LedgerEntry.amount > 0)).scalars().first()
    session.execute(text("UPDATE ledgerentry SET amount = amount + 1 WHERE id = :id"), {"id": entry.id})
    session.execute(text("UPDATE account SET balance = -5, reserved = 0 WHERE user_id = :u"), {"u": uid})
    session.commit()
    problems = service.verify_invariants(session)["problems"]
    assert any("legs sum to 0.000000001, not 0" in p for p in problems)
    assert any("negative balance -0.000000005" in p for p in problems)


# -- property: any sequence of operations keeps the invariant ------------------------------------------
# (seeded random sequences: hypothesis is not installed in this environment)

def _random_amount(rng: random.Random, top: int) -> Decimal:
    return D(rng.randint(1, top * 10**9)).scaleb(-9)


@pytest.mark.parametrize("seed", range(12))
def test_property_operations_keep_the_invariant(monkeypatch, seed):
    rng = random.Random(seed)
    monkeypatch.setenv("POOL_FEE_BPS", str(rng.choice([0, 1, 1000, 3333, 9999, 10_000])))
    get_settings.cache_clear()
    with new_session() as s:
        clients = [make_db_user(s) for _ in range(3)]
        owners = [make_db_user(s, Role.worker_owner) for _ in range(rng.randint(0, 3))]
        workers = [(make_db_worker(s, o), o) for o in owners]
        s.commit()
        settled: list[Job] = []
        expected = {c: D(0) for c in clients}
        for _ in range(rng.randint(5, 25)):
            name = rng.choice(["credit", "job", "job", "fail", "settle_again"])
            client = rng.choice(clients)
            if name == "credit":
                amount = _random_amount(rng, 20)
                fund(s, client, str(amount))
                expected[client] += amount
            elif name in ("job", "fail"):
                amount = _random_amount(rng, 5)
                job = make_db_job(s, client, amount)
                try:
                    service.reserve(s, user_id=client, amount=amount)
                except InsufficientBalance:
                    assert service.balances(s, client)[2] < amount
                    s.rollback()
                    continue
                if name == "job":
                    paid = rng.sample(workers, rng.randint(0, len(workers)))
                    service.settle_job(s, job=job, rewarded_workers=paid)
                    expected[client] -= amount
                    settled.append(job)
                else:
                    service.release(s, user_id=client, amount=amount)
            elif settled:
                service.settle_job(s, job=rng.choice(settled), rewarded_workers=workers)
            s.commit()
            report = service.verify_invariants(s)
            assert report["ok"], report["problems"]
        for c in clients:
            bal, reserved, _ = service.balances(s, c)
            assert bal == expected[c] and reserved == 0 and bal >= 0
