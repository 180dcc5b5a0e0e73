"""The double-entry token ledger: accounts, transactions with an idempotency key, and their legs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.core.money import Money
from backend.core.security import now_utc


class AccountKind(StrEnum):
    user = "user"
    """A client's or worker owner's balance."""
    pool = "pool"
    """The pool's treasury: collects pool fees."""
    clearing = "clearing"
    """Holds a job charge between the client's debit and the fee and reward payouts; nets to zero."""
    issuance = "issuance"
    """Source of minted tokens (admin credits, emission); its negative balance is the supply."""


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    kind: AccountKind = Field(index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", unique=True)
    balance: Decimal = Field(default=Decimal(0), sa_column=Column(Money, nullable=False, default=0))
    """Cache of the sum of this account's legs; the invariant check proves they are equal."""
    reserved: Decimal = Field(default=Decimal(0), sa_column=Column(Money, nullable=False, default=0))
    """Held for admitted jobs not yet settled; never part of the ledger."""


class EntryKind(StrEnum):
    admin_credit = "admin_credit"
    """An operator credited a user from issuance."""
    job_charge = "job_charge"
    """A verified job's price moved from the client to clearing."""
    pool_fee = "pool_fee"
    """The pool's share of a job charge, from clearing to the pool."""
    worker_reward = "worker_reward"
    """A verified worker's share of a job charge, from clearing to its owner."""
    refund = "refund"
    """A charge given back to a client."""
    daily_emission = "daily_emission"
    """Tokens minted to a worker owner for a day's uptime and reputation."""


class LedgerTransaction(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    kind: EntryKind = Field(index=True)
    idempotency_key: str = Field(unique=True, index=True, max_length=200)
    """A retry with the same key posts nothing (unique constraint)."""
    job_id: int | None = Field(default=None, foreign_key="job.id", index=True)
    worker_id: int | None = Field(default=None, foreign_key="worker.id", index=True)
    memo: str = ""
    created_at: datetime = Field(default_factory=now_utc, index=True)


class LedgerEntry(SQLModel, table=True):
    """One leg of a transaction; the legs of a transaction sum to zero."""

    id: int | None = Field(default=None, primary_key=True)
    transaction_id: int = Field(foreign_key="ledgertransaction.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    amount: Decimal = Field(sa_column=Column(Money, nullable=False))
    kind: EntryKind = Field(index=True)
    created_at: datetime = Field(default_factory=now_utc, index=True)


class EmissionRun(SQLModel, table=True):
    """One row per UTC day: the unique day makes a second run (any process) a no-op."""

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(unique=True, index=True)
    started_at: datetime = Field(default_factory=now_utc)
    finished_at: datetime | None = None
    cap: Decimal = Field(sa_column=Column(Money, nullable=False))
    emitted: Decimal = Field(default=Decimal(0), sa_column=Column(Money, nullable=False, default=0))
    trigger: str = "schedule"
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """Per-worker breakdown of the run (uptime minutes, reputation, amount), for the status page."""
