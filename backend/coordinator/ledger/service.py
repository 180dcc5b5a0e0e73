"""The token ledger: append-only, double-entry, exact (integer nano-tokens in the database).

Every function takes the caller's Session and never commits: the caller's unit of work commits once,
so a job's status change and its money move together or not at all.

    ensure_system_accounts(session) -> dict[AccountKind, int]
        The pool, clearing and issuance account ids; creates missing ones (idempotent, race-safe).
    account_for_user(session, user_id) -> Account
        The user's account, created on first use (race-safe); unknown user -> NotFound.
    reserve(session, *, user_id, amount) -> None
        Holds `amount` of the user's available balance with one conditional UPDATE
        (`reserved = reserved + a WHERE balance - reserved >= a`); otherwise InsufficientBalance (402).
    release(session, *, user_id, amount) -> None
        Gives a reservation back (never below zero).
    post_transaction(session, *, kind, idempotency_key, legs, job_id=None, worker_id=None, memo="")
        -> LedgerTransaction
        legs: [(account_id, Decimal)], summing to zero. A duplicate idempotency key posts nothing and
        returns the transaction already posted under it (a SAVEPOINT absorbs the unique violation).
    credit(session, *, user_id, amount, memo="", idempotency_key, kind=EntryKind.admin_credit,
           worker_id=None) -> LedgerTransaction
        Mints `amount` from issuance to the user (admin credits, daily emission).
    settle_job(session, *, job, rewarded_owner_ids=None, rewarded_workers=None, reserved_amount=None)
        -> Settlement
        For a verified job of a client: releases the reservation (`reserved_amount`, default
        `job.price`) and posts job_charge (client -> clearing, `job.price`), pool_fee (clearing -> pool,
        POOL_FEE_BPS of the charge) and one worker_reward per verified worker (clearing -> its owner;
        the rest split evenly, the first shares take the leftover nano-tokens). Pass either
        `rewarded_workers=[(worker_id, owner_user_id), ...]` (preferred: the reward transactions then
        carry worker_id, which the leaderboard's earnings use) or `rewarded_owner_ids=[owner_user_id, ...]`.
        Keys `job:{id}:charge`, `job:{id}:pool_fee`, `job:{id}:reward:{worker_id}`: a second call pays
        nothing and releases nothing (Settlement.settled_now is False). With no rewarded worker the whole
        charge goes to the pool. A job without a client (demo, audit) or with price 0 charges nothing.
    balances(session, user_id) -> (balance, reserved, available)
    verify_invariants(session) -> {"ok": bool, "problems": [str, ...]}
    finance_summary(session) -> dict, leaderboard(session, limit) -> list[dict], ledger_page(...)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.errors import InsufficientBalance, NotFound, Unprocessable
from backend.core.money import NANO, SCALE, fmt, split_bps, split_evenly, to_decimal
from backend.core.security import now_utc
from backend.models import (
    Account,
    AccountKind,
    ApiKey,
    EntryKind,
    Job,
    LedgerEntry,
    LedgerTransaction,
    Role,
    User,
    Worker,
)

SYSTEM_KINDS = (AccountKind.pool, AccountKind.clearing, AccountKind.issuance)
# Serialises the creation of system accounts on PostgreSQL (SQLite's BEGIN IMMEDIATE already does).
_SYSTEM_ACCOUNTS_LOCK = 0x4F4D_4C45_4447  # "OMLEDG"
ZERO = Decimal(0)
# Amounts are int64 nano-tokens (max ~9.22e9 tokens). Every balance and every per-kind total is bounded
# by the supply, so capping what issuance may mint keeps all of them (and their SQL sums) in range.
MAX_SUPPLY = Decimal(4_000_000_000)


# -- amounts -------------------------------------------------------------------------------------------

def _nano(amount: Any) -> int:
    """Exact integer nano-tokens of an amount (refuses floats and sub-nano precision)."""
    return int(to_decimal(amount) * NANO)


def _tok(nano: Any) -> Decimal:
    return Decimal(int(nano or 0)).scaleb(-SCALE)


def _expire_accounts(session: Session) -> None:
    """Raw UPDATEs bypass the ORM: make loaded Account objects reload their columns."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Account):
            session.expire(obj)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# -- accounts ------------------------------------------------------------------------------------------

def _system_ids(session: Session) -> dict[AccountKind, int]:
    rows = session.execute(
        select(Account.kind, func.min(Account.id)).where(Account.kind.in_(SYSTEM_KINDS))
        .group_by(Account.kind)
    ).all()
    return {AccountKind(kind): int(acc_id) for kind, acc_id in rows}


def ensure_system_accounts(session: Session) -> dict[AccountKind, int]:
    """Ids of the pool, clearing and issuance accounts, creating the missing ones once."""
    ids = _system_ids(session)
    if len(ids) == len(SYSTEM_KINDS):
        return ids
    if _dialect(session) == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SYSTEM_ACCOUNTS_LOCK})
        ids = _system_ids(session)  # READ COMMITTED: sees what the previous lock holder committed
    for kind in SYSTEM_KINDS:
        if kind not in ids:
            account = Account(kind=kind)
            session.add(account)
            session.flush()
            ids[kind] = int(account.id)  # type: ignore[arg-type]
    return ids


def _user_account_id(session: Session, user_id: int) -> int | None:
    return session.execute(select(Account.id).where(Account.user_id == user_id)).scalar_one_or_none()


def account_for_user(session: Session, user_id: int) -> Account:
    """The user's account, created on first use; two concurrent first uses create one account."""
    account = session.execute(select(Account).where(Account.user_id == user_id)).scalar_one_or_none()
    if account is not None:
        return account
    if session.get(User, user_id) is None:
        raise NotFound("User not found")
    try:
        with session.begin_nested():
            account = Account(kind=AccountKind.user, user_id=user_id)
            session.add(account)
    except IntegrityError:
        # Another transaction created it first (unique user_id).
        account = session.execute(select(Account).where(Account.user_id == user_id)).scalar_one()
    return account


def _account_id(session: Session, user_id: int) -> int:
    acc_id = _user_account_id(session, user_id)
    if acc_id is None:
        acc_id = int(account_for_user(session, user_id).id)  # type: ignore[arg-type]
    return acc_id


# -- reservations --------------------------------------------------------------------------------------

def reserve(session: Session, *, user_id: int, amount: Decimal) -> None:
    """Hold `amount` of the user's available balance, atomically; 402 when it does not fit."""
    nano = _nano(amount)
    if nano < 0:
        raise ValueError("cannot reserve a negative amount")
    if nano == 0:
        return
    acc_id = _account_id(session, user_id)
    result = session.execute(
        text("UPDATE account SET reserved = reserved + :a WHERE id = :id AND balance - reserved >= :a"),
        {"a": nano, "id": acc_id},
    )
    _expire_accounts(session)
    if result.rowcount != 1:
        raise InsufficientBalance("Insufficient balance")


def release(session: Session, *, user_id: int, amount: Decimal) -> None:
    """Give a reservation back; the reserved amount never goes below zero."""
    nano = _nano(amount)
    if nano <= 0:
        return
    session.execute(
        text("UPDATE account SET reserved = CASE WHEN reserved > :a THEN reserved - :a ELSE 0 END "
             "WHERE user_id = :u"),
        {"a": nano, "u": user_id},
    )
    _expire_accounts(session)


# -- posting -------------------------------------------------------------------------------------------

def _tx_by_key(session: Session, key: str) -> LedgerTransaction | None:
    return session.execute(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).scalar_one_or_none()


def _nano_legs(legs: Sequence[tuple[int, Decimal]]) -> list[tuple[int, int]]:
    """A transaction's legs in nano-tokens, checked to sum to zero, zero legs dropped."""
    nano_legs = [(int(acc), _nano(amount)) for acc, amount in legs]
    if sum(n for _, n in nano_legs) != 0:
        raise ValueError("the legs of a transaction must sum to zero")
    return [(acc, n) for acc, n in nano_legs if n != 0]


def _write_legs(session: Session, txs: Sequence[tuple[int, EntryKind, list[tuple[int, int]]]], created_at: Any,
                release: dict[int, Decimal] | None = None) -> None:
    """Insert the legs of posted transactions [(tx id, kind, nano legs)] in one multi-row INSERT and move
    each account's balance once (in id order: one lock order for every posting, no deadlocks).
    `release` gives reservations back {account_id: amount} in the same UPDATEs."""
    entries = [{"transaction_id": tx_id, "account_id": acc, "amount": _tok(n), "kind": kind, "created_at": created_at}
               for tx_id, kind, legs in txs for acc, n in legs]
    if entries:
        session.execute(LedgerEntry.__table__.insert(), entries)  # type: ignore[attr-defined]
    deltas: dict[int, int] = defaultdict(int)
    for _tx_id, _kind, legs in txs:
        for acc, n in legs:
            deltas[acc] += n
    held = {acc: _nano(amount) for acc, amount in (release or {}).items() if _nano(amount) > 0}
    for acc in sorted(set(deltas) | set(held)):
        if held.get(acc):
            session.execute(text("UPDATE account SET balance = balance + :d, reserved = CASE WHEN reserved > :r "
                                 "THEN reserved - :r ELSE 0 END WHERE id = :id"),
                            {"d": deltas.get(acc, 0), "r": held[acc], "id": acc})
        elif deltas[acc]:
            session.execute(text("UPDATE account SET balance = balance + :d WHERE id = :id"),
                            {"d": deltas[acc], "id": acc})
    _expire_accounts(session)


def _post(session: Session, *, kind: EntryKind, idempotency_key: str,
          legs: Sequence[tuple[int, Decimal]], job_id: int | None = None, worker_id: int | None = None,
          memo: str = "") -> tuple[LedgerTransaction, bool]:
    """post_transaction, also saying whether this call posted it (True) or found it (False)."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1..200 characters")
    nano_legs = _nano_legs(legs)

    existing = _tx_by_key(session, idempotency_key)
    if existing is not None:
        return existing, False
    tx = LedgerTransaction(kind=kind, idempotency_key=idempotency_key, job_id=job_id, worker_id=worker_id,
                           memo=memo)
    try:
        # The savepoint keeps a duplicate-key violation from poisoning the caller's transaction.
        with session.begin_nested():
            session.add(tx)
    except IntegrityError:
        existing = _tx_by_key(session, idempotency_key)
        if existing is None:
            raise  # not a duplicate key: a bad job_id / worker_id
        return existing, False
    _write_legs(session, [(tx.id, kind, nano_legs)], tx.created_at)  # type: ignore[list-item]
    return tx, True


def post_transaction(session: Session, *, kind: EntryKind, idempotency_key: str,
                     legs: Sequence[tuple[int, Decimal]], job_id: int | None = None,
                     worker_id: int | None = None, memo: str = "") -> LedgerTransaction:
    """Post a balanced transaction once per idempotency key; a duplicate returns the first one."""
    tx, _ = _post(session, kind=kind, idempotency_key=idempotency_key, legs=legs, job_id=job_id,
                  worker_id=worker_id, memo=memo)
    return tx


def lock_user_accounts(session: Session, user_ids: Iterable[int]) -> dict[int, int]:
    """Create (if needed) and lock the accounts of these users and the system accounts, in id order;
    returns {user_id: account_id}. Call before posting several transactions in one unit of work."""
    system = ensure_system_accounts(session)
    accounts = _user_account_ids(session, user_ids)
    lock_accounts(session, [*system.values(), *accounts.values()])
    return accounts


def credit_once(session: Session, *, user_id: int, amount: Decimal, memo: str = "", idempotency_key: str,
                kind: EntryKind = EntryKind.admin_credit,
                worker_id: int | None = None) -> tuple[LedgerTransaction, bool]:
    """credit(), also saying whether this call posted it."""
    value = to_decimal(amount)
    if value <= 0:
        raise ValueError("a credit must be positive")
    system = ensure_system_accounts(session)
    if _tx_by_key(session, idempotency_key) is None:
        minted = -(session.execute(select(Account.balance).where(
            Account.id == system[AccountKind.issuance])).scalar_one() or ZERO)
        if minted + value > MAX_SUPPLY:
            raise Unprocessable(f"this credit would take the token supply past its maximum of {fmt(MAX_SUPPLY)}")
    acc_id = _account_id(session, user_id)
    return _post(session, kind=kind, idempotency_key=idempotency_key,
                 legs=[(system[AccountKind.issuance], -value), (acc_id, value)], worker_id=worker_id,
                 memo=memo)


def credit(session: Session, *, user_id: int, amount: Decimal, memo: str = "", idempotency_key: str,
           kind: EntryKind = EntryKind.admin_credit, worker_id: int | None = None) -> LedgerTransaction:
    """Mint `amount` from issuance to the user's balance (admin credit, daily emission)."""
    tx, _ = credit_once(session, user_id=user_id, amount=amount, memo=memo, idempotency_key=idempotency_key,
                        kind=kind, worker_id=worker_id)
    return tx


def transaction_amount(session: Session, transaction_id: int) -> Decimal:
    """The amount a transaction moved: the sum of its positive legs."""
    total = session.execute(
        select(func.sum(LedgerEntry.amount)).where(LedgerEntry.transaction_id == transaction_id,
                                                   LedgerEntry.amount > 0)
    ).scalar_one_or_none()
    return total or ZERO


def transaction_user_id(session: Session, transaction_id: int) -> int | None:
    """The user credited by a transaction (its positive leg on a user account), if any."""
    return session.execute(
        select(Account.user_id).join(LedgerEntry, LedgerEntry.account_id == Account.id)
        .where(LedgerEntry.transaction_id == transaction_id, LedgerEntry.amount > 0,
               Account.kind == AccountKind.user)
    ).scalars().first()


# -- jobs ----------------------------------------------------------------------------------------------

@dataclass
class Settlement:
    job_id: int
    settled_now: bool
    """False when nothing was posted by this call (already settled, or nothing to charge)."""
    charged: Decimal = ZERO
    pool_fee: Decimal = ZERO
    rewards: list[dict[str, Any]] = field(default_factory=list)
    """[{worker_id, owner_user_id, amount}] as posted (or as found, for an earlier settlement)."""


def job_settlement(session: Session, job_id: int) -> Settlement:
    """What the ledger holds for a job: its charge, fee and rewards."""
    rows = session.execute(
        select(LedgerTransaction.kind, LedgerTransaction.worker_id, Account.user_id, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(LedgerTransaction.job_id == job_id, LedgerEntry.amount > 0)
        .order_by(LedgerTransaction.id)
    ).all()
    result = Settlement(job_id=job_id, settled_now=False)
    for kind, worker_id, user_id, amount in rows:
        if kind == EntryKind.job_charge:
            result.charged += amount
        elif kind == EntryKind.pool_fee:
            result.pool_fee += amount
        elif kind == EntryKind.worker_reward:
            result.rewards.append({"worker_id": worker_id, "owner_user_id": user_id, "amount": amount})
    return result


def lock_accounts(session: Session, account_ids: Iterable[int]) -> None:
    """Row-lock accounts in id order up front (PostgreSQL; SQLite already holds the write lock), so
    transactions that move money between several accounts never deadlock with one another."""
    ids = sorted(set(account_ids))
    if ids and _dialect(session) == "postgresql":
        session.execute(select(Account.id).where(Account.id.in_(ids)).order_by(Account.id).with_for_update())


def settle_job(session: Session, *, job: Job, rewarded_owner_ids: Sequence[int] | None = None,
               rewarded_workers: Sequence[tuple[int, int]] | None = None,
               reserved_amount: Decimal | None = None) -> Settlement:
    """Charge a verified job once: release its reservation, post charge, pool fee and rewards.

    The hot path of every verified job, so it is a handful of statements whatever the number of
    legs: one lookup of the accounts, one idempotency check, one multi-row INSERT per table and one
    UPDATE per account whose balance moves (clearing nets to zero and is not touched).
    """
    assert job.id is not None
    price = to_decimal(job.price or 0)
    reserved = to_decimal(reserved_amount) if reserved_amount is not None else price
    if job.client_user_id is None:
        return Settlement(job_id=job.id, settled_now=False)
    if price <= 0:
        release(session, user_id=job.client_user_id, amount=reserved)
        return Settlement(job_id=job.id, settled_now=False)

    payees: list[tuple[int | None, int]] = []
    if rewarded_workers:
        seen: set[int] = set()
        for worker_id, owner_id in rewarded_workers:
            if worker_id not in seen:
                seen.add(worker_id)
                payees.append((int(worker_id), int(owner_id)))
    elif rewarded_owner_ids:
        payees = [(None, int(owner_id)) for owner_id in rewarded_owner_ids]

    users = _user_account_ids(session, [job.client_user_id, *(owner for _, owner in payees)])
    system = ensure_system_accounts(session)
    clearing, pool = system[AccountKind.clearing], system[AccountKind.pool]
    client_acc = users[job.client_user_id]
    lock_accounts(session, [client_acc, clearing, pool, *users.values()])
    if _tx_by_key(session, f"job:{job.id}:charge") is not None:
        return job_settlement(session, job.id)

    settlement = Settlement(job_id=job.id, settled_now=True, charged=price)
    postings: list[_Posting] = [_Posting(EntryKind.job_charge, f"job:{job.id}:charge",
                                         [(client_acc, -price), (clearing, price)],
                                         memo=f"{job.job_type} job {job.id}: {job.units} unit(s)")]
    fee, remainder = split_bps(price, get_settings().pool_fee_bps) if payees else (price, ZERO)
    if fee > 0:
        postings.append(_Posting(EntryKind.pool_fee, f"job:{job.id}:pool_fee", [(clearing, -fee), (pool, fee)],
                                 memo=f"pool fee of job {job.id}"))
        settlement.pool_fee = fee
    for i, ((worker_id, owner_id), share) in enumerate(zip(payees, split_evenly(remainder, len(payees)),
                                                           strict=True)):
        if share <= 0:
            continue
        key = (f"job:{job.id}:reward:{worker_id}" if worker_id is not None
               else f"job:{job.id}:reward:owner:{owner_id}:{i}")
        postings.append(_Posting(EntryKind.worker_reward, key, [(clearing, -share), (users[owner_id], share)],
                                 worker_id=worker_id, memo=f"reward for job {job.id}"))
        settlement.rewards.append({"worker_id": worker_id, "owner_user_id": owner_id, "amount": share})
    _post_all(session, postings, job_id=job.id, release={client_acc: reserved})
    return settlement


@dataclass
class _Posting:
    kind: EntryKind
    key: str
    legs: list[tuple[int, Decimal]]
    worker_id: int | None = None
    memo: str = ""


def _user_account_ids(session: Session, user_ids: Iterable[int]) -> dict[int, int]:
    """{user_id: account_id} in one query, creating the accounts that do not exist yet."""
    wanted = set(user_ids)
    found = {int(u): int(a) for u, a in session.execute(
        select(Account.user_id, Account.id).where(Account.user_id.in_(wanted))).all()}
    for uid in sorted(wanted - found.keys()):
        found[uid] = int(account_for_user(session, uid).id)  # type: ignore[arg-type]
    return found


def _post_all(session: Session, postings: Sequence[_Posting], *, job_id: int | None,
              release: dict[int, Decimal]) -> None:
    """Post several balanced transactions whose keys the caller has checked are new (under its locks).

    A key posted meanwhile by someone else still fails on the unique index, and the caller's unit of
    work with it: nothing is ever posted twice. `release` gives reservations back in the same UPDATEs.
    """
    now = now_utc()
    legs = {p.key: _nano_legs(p.legs) for p in postings}
    tx_table = LedgerTransaction.__table__  # type: ignore[attr-defined]
    rows = [{"kind": p.kind, "idempotency_key": p.key, "job_id": job_id, "worker_id": p.worker_id,
             "memo": p.memo, "created_at": now} for p in postings]
    # One multi-row INSERT; RETURNING's row order is not guaranteed, the unique keys map ids back.
    ids = dict(session.execute(tx_table.insert().returning(tx_table.c.idempotency_key, tx_table.c.id)
                               .values(rows)).all())
    _write_legs(session, [(ids[p.key], p.kind, legs[p.key]) for p in postings], now, release)


# -- reading -------------------------------------------------------------------------------------------

def balances(session: Session, user_id: int) -> tuple[Decimal, Decimal, Decimal]:
    """(balance, reserved, available) of a user; zeros for a user with no account yet."""
    row = session.execute(
        select(Account.balance, Account.reserved).where(Account.user_id == user_id)
    ).first()
    if row is None:
        return ZERO, ZERO, ZERO
    balance, reserved = row
    return balance, reserved, balance - reserved


def ledger_page(session: Session, user_id: int, *, limit: int, offset: int,
                kind: EntryKind | None = None) -> tuple[list[dict[str, Any]], int]:
    """The user's ledger legs, newest first, with their transaction's details; and the total count."""
    acc_id = _user_account_id(session, user_id)
    if acc_id is None:
        return [], 0
    conditions = [LedgerEntry.account_id == acc_id]
    if kind is not None:
        conditions.append(LedgerEntry.kind == kind)
    total = session.execute(select(func.count()).select_from(LedgerEntry).where(*conditions)).scalar_one()
    rows = session.execute(
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(*conditions)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .offset(offset).limit(limit)
    ).all()
    items = [{"id": e.id, "transaction_id": t.id, "kind": e.kind, "amount": e.amount, "job_id": t.job_id,
              "worker_id": t.worker_id, "memo": t.memo, "created_at": e.created_at} for e, t in rows]
    return items, int(total)


def _utc_day(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, computed by the database (PostgreSQL would
    otherwise use the server's time zone)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def spending(session: Session, user_id: int, *, days: int) -> dict[str, Any]:
    """What a client paid for verified jobs: per API key (all time) and per UTC day (the last `days`)."""
    acc_id = _user_account_id(session, user_id)
    out: dict[str, Any] = {"total": Decimal(0), "jobs": 0, "per_key": [], "per_day": []}
    if acc_id is None:
        return out
    charges = [LedgerEntry.account_id == acc_id, LedgerEntry.kind == EntryKind.job_charge]
    rows = session.execute(
        select(Job.api_key_id, ApiKey.name, ApiKey.prefix, func.count(), func.sum(LedgerEntry.amount))
        .select_from(LedgerEntry)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(Job, Job.id == LedgerTransaction.job_id)
        .outerjoin(ApiKey, ApiKey.id == Job.api_key_id)
        .where(*charges)
        .group_by(Job.api_key_id, ApiKey.name, ApiKey.prefix)
    ).all()
    for key_id, name, prefix, n, amount in rows:
        out["per_key"].append({"api_key_id": key_id, "name": name, "prefix": prefix, "jobs": int(n),
                               "amount": -(amount or Decimal(0))})
        out["total"] += -(amount or Decimal(0))
        out["jobs"] += int(n)
    out["per_key"].sort(key=lambda r: r["amount"], reverse=True)
    since = now_utc() - timedelta(days=days)
    day = _utc_day(session, LedgerEntry.created_at)
    for d, n, amount in session.execute(
        select(day, func.count(), func.sum(LedgerEntry.amount))
        .where(*charges, LedgerEntry.created_at >= since).group_by(day).order_by(day)
    ).all():
        out["per_day"].append({"date": str(d), "jobs": int(n), "amount": -(amount or Decimal(0))})
    return out


def earnings(session: Session, user_id: int) -> dict[str, Any]:
    """What a worker owner earned, per worker: verified-job rewards and daily emission."""
    acc_id = _user_account_id(session, user_id)
    per: dict[int | None, dict[str, Any]] = {}
    if acc_id is not None:
        rows = session.execute(
            select(LedgerTransaction.worker_id, Worker.name, LedgerEntry.kind, func.count(),
                   func.sum(LedgerEntry.amount))
            .select_from(LedgerEntry)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .outerjoin(Worker, Worker.id == LedgerTransaction.worker_id)
            .where(LedgerEntry.account_id == acc_id,
                   LedgerEntry.kind.in_([EntryKind.worker_reward, EntryKind.daily_emission]))
            .group_by(LedgerTransaction.worker_id, Worker.name, LedgerEntry.kind)
        ).all()
        for worker_id, name, kind, n, amount in rows:
            row = per.setdefault(worker_id, {"worker_id": worker_id, "name": name, "rewarded_jobs": 0,
                                             "rewards": Decimal(0), "emission": Decimal(0)})
            if kind == EntryKind.worker_reward:
                row["rewards"] += amount or Decimal(0)
                row["rewarded_jobs"] += int(n)
            else:
                row["emission"] += amount or Decimal(0)
    items = sorted(per.values(), key=lambda r: (r["worker_id"] is None, r["worker_id"] or 0))
    for row in items:
        row["total"] = row["rewards"] + row["emission"]
    return {"per_worker": items, "total": sum((r["total"] for r in items), Decimal(0))}


def verify_invariants(session: Session) -> dict[str, Any]:
    """Prove the ledger adds up: balanced transactions, cached balances equal to their legs, no user
    balance below zero or below its reservation, clearing at zero, supply equal to what was minted."""
    problems: list[str] = []
    for tx_id, total in session.execute(text(
            "SELECT transaction_id, SUM(amount) FROM ledgerentry GROUP BY transaction_id "
            "HAVING SUM(amount) <> 0 ORDER BY transaction_id")).all():
        problems.append(f"transaction {tx_id}: legs sum to {fmt(_tok(total))}, not 0")
    # One statement, so one snapshot: a concurrent posting cannot make this a false alarm.
    for acc_id, cached, legs in session.execute(text(
            "SELECT a.id, a.balance, COALESCE(s.total, 0) FROM account a "
            "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledgerentry GROUP BY account_id) s "
            "ON s.account_id = a.id WHERE a.balance <> COALESCE(s.total, 0) ORDER BY a.id")).all():
        problems.append(f"account {acc_id}: cached balance {fmt(_tok(cached))} "
                        f"but its legs sum to {fmt(_tok(legs))}")
    for acc_id, user_id, balance, reserved in session.execute(
            select(Account.id, Account.user_id, Account.balance, Account.reserved)
            .where(Account.kind == AccountKind.user)
            .where((Account.balance < 0) | (Account.reserved < 0) | (Account.reserved > Account.balance))
            .order_by(Account.id)).all():
        if balance < 0:
            problems.append(f"account {acc_id} (user {user_id}): negative balance {fmt(balance)}")
        if reserved < 0:
            problems.append(f"account {acc_id} (user {user_id}): negative reservation {fmt(reserved)}")
        elif reserved > balance:
            problems.append(f"account {acc_id} (user {user_id}): reserved {fmt(reserved)} exceeds "
                            f"balance {fmt(balance)}")
    for acc_id, kind, balance in session.execute(
            select(Account.id, Account.kind, Account.balance)
            .where(Account.kind.in_(SYSTEM_KINDS)).order_by(Account.id)).all():
        if kind == AccountKind.clearing and balance != 0:
            problems.append(f"clearing account {acc_id} holds {fmt(balance)}, not 0")
        if kind == AccountKind.pool and balance < 0:
            problems.append(f"pool account {acc_id}: negative balance {fmt(balance)}")
        if kind == AccountKind.issuance and balance > 0:
            problems.append(f"issuance account {acc_id}: positive balance {fmt(balance)}")
    return {"ok": not problems, "problems": problems}


def finance_summary(session: Session) -> dict[str, Any]:
    """The pool's money at a glance (Decimals; the route formats them)."""
    totals = {k.value: ZERO for k in EntryKind}
    for kind, total in session.execute(
            select(LedgerEntry.kind, func.sum(LedgerEntry.amount)).where(LedgerEntry.amount > 0)
            .group_by(LedgerEntry.kind)).all():
        totals[EntryKind(kind).value] = total or ZERO

    by_role = {role: total or ZERO for role, total in session.execute(
        select(User.role, func.sum(Account.balance)).join(User, User.id == Account.user_id)
        .where(Account.kind == AccountKind.user).group_by(User.role)).all()}
    system = {AccountKind(kind): bal or ZERO for kind, bal in session.execute(
        select(Account.kind, func.sum(Account.balance)).where(Account.kind.in_(SYSTEM_KINDS))
        .group_by(Account.kind)).all()}
    reserved = session.execute(select(func.sum(Account.reserved))).scalar_one_or_none() or ZERO
    jobs_charged = session.execute(
        select(func.count()).select_from(LedgerTransaction)
        .where(LedgerTransaction.kind == EntryKind.job_charge)).scalar_one()
    return {
        "currency": "TOK",
        "totals_by_kind": totals,
        "pool_balance_tokens": system.get(AccountKind.pool, ZERO),
        "clearing_balance_tokens": system.get(AccountKind.clearing, ZERO),
        "client_balances_total": by_role.get(Role.client, ZERO),
        "owner_balances_total": by_role.get(Role.worker_owner, ZERO),
        "admin_balances_total": by_role.get(Role.admin, ZERO),
        "outstanding_reservations": reserved,
        "supply_minted": -system.get(AccountKind.issuance, ZERO),
        "jobs_charged": int(jobs_charged),
        "invariant": verify_invariants(session),
    }


def worker_earnings(session: Session) -> dict[int, dict[str, Decimal]]:
    """Per worker: job rewards and daily emission paid to its owner on its account."""
    out: dict[int, dict[str, Decimal]] = defaultdict(lambda: {"rewards": ZERO, "emission": ZERO})
    for worker_id, kind, total in session.execute(
            select(LedgerTransaction.worker_id, LedgerEntry.kind, func.sum(LedgerEntry.amount))
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .where(LedgerTransaction.worker_id.is_not(None), LedgerEntry.amount > 0,
                   LedgerEntry.kind.in_((EntryKind.worker_reward, EntryKind.daily_emission)))
            .group_by(LedgerTransaction.worker_id, LedgerEntry.kind)).all():
        slot = "rewards" if kind == EntryKind.worker_reward else "emission"
        out[int(worker_id)][slot] += total or ZERO
    return out


def leaderboard(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """Workers by verified jobs, then reputation, then earnings (rewards plus emission)."""
    earnings = worker_earnings(session)
    rows = []
    for w in session.execute(select(Worker)).scalars().all():
        e = earnings.get(int(w.id), {"rewards": ZERO, "emission": ZERO})  # type: ignore[arg-type]
        rows.append({"worker_id": w.id, "name": w.name, "owner_user_id": w.owner_user_id, "status": w.status,
                     "reputation": w.reputation, "verified_count": w.verified_count,
                     "rejected_count": w.rejected_count, "earnings": e["rewards"] + e["emission"],
                     "rewards": e["rewards"], "emission": e["emission"]})
    rows.sort(key=lambda r: (-r["verified_count"], -r["reputation"], -r["earnings"], r["worker_id"]))
    return rows[:limit]
