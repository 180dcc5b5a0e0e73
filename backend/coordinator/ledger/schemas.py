"""Request and response shapes of the ledger routes. Amounts are decimal strings (never floats)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from backend.models import EntryKind


class BalanceOut(BaseModel):
    currency: str = "TOK"
    balance: str
    reserved: str
    available: str


class LedgerItem(BaseModel):
    id: int
    transaction_id: int
    kind: EntryKind
    amount: str
    """Signed: positive credits the caller, negative debits."""
    job_id: int | None
    worker_id: int | None
    memo: str
    created_at: datetime


class LedgerPage(BaseModel):
    items: list[LedgerItem]
    total: int
    limit: int
    offset: int


class CreditIn(BaseModel):
    amount: Decimal | str = Field(
        description="Tokens to credit, > 0, at most 9 decimal places. Send a decimal string (\"0.1\"); "
                    "a JSON number is read from its literal text, exactly as written (never through a "
                    "binary float).",
        examples=["100", "0.1"])
    memo: str = Field(default="", max_length=500)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=150,
        description="Optional: a retry with the same key credits once and answers with the same transaction.")


class CreditOut(BaseModel):
    transaction_id: int
    user_id: int
    amount: str
    balance: str
    replayed: bool = False
    """True when the idempotency key had already been used: nothing new was credited."""


class InvariantOut(BaseModel):
    ok: bool
    problems: list[str]


class FinanceSummary(BaseModel):
    currency: str = "TOK"
    totals_by_kind: dict[str, str]
    pool_balance_tokens: str
    clearing_balance_tokens: str
    client_balances_total: str
    owner_balances_total: str
    admin_balances_total: str
    outstanding_reservations: str
    supply_minted: str
    jobs_charged: int
    invariant: InvariantOut


class LeaderboardRow(BaseModel):
    worker_id: int
    name: str
    owner_user_id: int
    status: str
    reputation: float
    verified_count: int
    rejected_count: int
    earnings: str
    rewards: str
    emission: str


class Leaderboard(BaseModel):
    workers: list[LeaderboardRow]


class KeySpend(BaseModel):
    api_key_id: int | None
    """None for jobs admitted without a key (none today; kept so old rows still add up)."""
    name: str | None
    prefix: str | None
    jobs: int
    amount: str


class DaySpend(BaseModel):
    date: str
    """UTC day, YYYY-MM-DD."""
    jobs: int
    amount: str


class SpendOut(BaseModel):
    """A client's job charges, from the ledger: per API key (all time) and per UTC day."""

    currency: str = "TOK"
    total: str
    jobs: int
    per_key: list[KeySpend]
    per_day: list[DaySpend]


class WorkerEarnings(BaseModel):
    worker_id: int | None
    name: str | None
    rewarded_jobs: int
    rewards: str
    emission: str
    total: str


class EarningsOut(BaseModel):
    """A worker owner's income, from the ledger: job rewards and daily emission per worker."""

    currency: str = "TOK"
    total: str
    per_worker: list[WorkerEarnings]
