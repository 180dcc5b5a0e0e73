"""HTTP routes of the ledger: the caller's balance and ledger, admin credits, finance summary, leaderboard.

Amounts are decimal strings in every response. `POST /admin/users/{user_id}/credit` takes `amount` as a
decimal string (recommended) or a JSON number; a number is read from its literal text in the request
body (`json.loads(..., parse_float=Decimal)`), so `0.1` is exactly 0.1 and `12345678.123456789` keeps
all its digits. Either way: > 0, at most 9 decimal places, at most 1,000,000,000 per credit.
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from backend.coordinator.deps import AdminUser, CurrentUser, SessionDep
from backend.coordinator.ledger import schemas, service
from backend.core.errors import Conflict, NotFound, Unprocessable
from backend.core.metrics import LEDGER_TOTALS
from backend.core.money import fmt, to_decimal
from backend.models import AdminAction, EntryKind, Role, User

router = APIRouter()

MAX_CREDIT = Decimal(1_000_000_000)
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|snan|inf|infinity)",
                            re.IGNORECASE | re.ASCII)


@router.get("/me/balance", response_model=schemas.BalanceOut, tags=["me"])
def my_balance(user: CurrentUser, session: SessionDep) -> schemas.BalanceOut:
    balance, reserved, available = service.balances(session, user.id)  # type: ignore[arg-type]
    return schemas.BalanceOut(balance=fmt(balance), reserved=fmt(reserved), available=fmt(available))


@router.get("/me/ledger", response_model=schemas.LedgerPage, tags=["me"])
def my_ledger(user: CurrentUser, session: SessionDep,
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              offset: Annotated[int, Query(ge=0)] = 0,
              kind: EntryKind | None = None) -> schemas.LedgerPage:
    items, total = service.ledger_page(session, user.id, limit=limit, offset=offset, kind=kind)  # type: ignore[arg-type]
    return schemas.LedgerPage(
        items=[schemas.LedgerItem(**{**item, "amount": fmt(item["amount"])}) for item in items],
        total=total, limit=limit, offset=offset)


@router.get("/me/spend", response_model=schemas.SpendOut, tags=["me"],
            summary="Job charges per API key and per UTC day (clients)")
def my_spend(user: CurrentUser, session: SessionDep,
             days: Annotated[int, Query(ge=1, le=366)] = 30) -> schemas.SpendOut:
    data = service.spending(session, user.id, days=days)  # type: ignore[arg-type]
    return schemas.SpendOut(
        total=fmt(data["total"]), jobs=data["jobs"],
        per_key=[schemas.KeySpend(**{**r, "amount": fmt(r["amount"])}) for r in data["per_key"]],
        per_day=[schemas.DaySpend(**{**r, "amount": fmt(r["amount"])}) for r in data["per_day"]])


@router.get("/me/earnings", response_model=schemas.EarningsOut, tags=["me"],
            summary="Rewards and emission per worker (worker owners)")
def my_earnings(user: CurrentUser, session: SessionDep) -> schemas.EarningsOut:
    data = service.earnings(session, user.id)  # type: ignore[arg-type]
    money = ("rewards", "emission", "total")
    rows = [{k: fmt(v) if k in money else v for k, v in r.items()} for r in data["per_worker"]]
    return schemas.EarningsOut(total=fmt(data["total"]), per_worker=[schemas.WorkerEarnings(**r) for r in rows])


async def _literal_amount(request: Request) -> Any:
    """The `amount` of the JSON body with numbers parsed exactly (Decimal, never float)."""
    try:
        data = json.loads(await request.body(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data.get("amount") if isinstance(data, dict) else None


def _parse_amount(raw: Any) -> Decimal:
    if isinstance(raw, bool) or raw is None:
        raise Unprocessable("amount must be a decimal string such as \"10.5\"")
    if isinstance(raw, str) and not _PLAIN_DECIMAL.fullmatch(raw.strip()):
        # Decimal() also reads "1_000" and non-ASCII digits ("١٢٣"); an amount is plain ASCII only.
        raise Unprocessable("Invalid amount: use a plain decimal such as \"10.5\" (ASCII digits, optional exponent)")
    try:
        amount = to_decimal(raw.strip() if isinstance(raw, str) else raw)
    except ArithmeticError:  # decimal.InvalidOperation from quantize: e.g. "1e400"
        raise Unprocessable("Invalid amount: out of range") from None
    except ValueError as exc:
        raise Unprocessable(f"Invalid amount: {exc}") from None
    if amount <= 0:
        raise Unprocessable("amount must be greater than 0")
    if amount > MAX_CREDIT:
        raise Unprocessable(f"amount must be at most {MAX_CREDIT} per credit")
    return amount


@router.post("/admin/users/{user_id}/credit", response_model=schemas.CreditOut,
             status_code=status.HTTP_201_CREATED, tags=["admin"])
def admin_credit(user_id: int, body: schemas.CreditIn, admin: AdminUser, session: SessionDep,
                 literal: Annotated[Any, Depends(_literal_amount)]) -> schemas.CreditOut:
    amount = _parse_amount(literal if literal is not None else body.amount)
    target = session.get(User, user_id)
    if target is None:
        raise NotFound("User not found")
    if target.role == Role.admin:
        raise Unprocessable("Only client and worker owner balances can be credited")
    key = f"admin_credit:{body.idempotency_key or uuid.uuid4().hex}"
    tx, created = service.credit_once(session, user_id=user_id, amount=amount, memo=body.memo,
                                      idempotency_key=key, kind=EntryKind.admin_credit)
    if not created:
        same = (tx.kind == EntryKind.admin_credit
                and service.transaction_user_id(session, tx.id) == user_id  # type: ignore[arg-type]
                and service.transaction_amount(session, tx.id) == amount)  # type: ignore[arg-type]
        if not same:
            raise Conflict("idempotency_key was already used for a different credit")
    else:
        session.add(AdminAction(actor_user_id=admin.id, action="credit", target_type="user",  # type: ignore[arg-type]
                                target_id=user_id, reason=f"{fmt(amount)} TOK: {body.memo}"[:500]))
    balance, _, _ = service.balances(session, user_id)
    session.commit()
    return schemas.CreditOut(transaction_id=tx.id, user_id=user_id, amount=fmt(amount),  # type: ignore[arg-type]
                             balance=fmt(balance), replayed=not created)


@router.get("/admin/finance/summary", response_model=schemas.FinanceSummary, tags=["admin"])
def finance_summary(_: AdminUser, session: SessionDep) -> schemas.FinanceSummary:
    data = service.finance_summary(session)
    for kind, total in data["totals_by_kind"].items():
        LEDGER_TOTALS.labels(kind=kind).set(float(total))
    out = {k: (fmt(v) if isinstance(v, Decimal) else v) for k, v in data.items()}
    out["totals_by_kind"] = {k: fmt(v) for k, v in data["totals_by_kind"].items()}
    return schemas.FinanceSummary(**out)


@router.get("/admin/leaderboard", response_model=schemas.Leaderboard, tags=["admin"])
def admin_leaderboard(_: AdminUser, session: SessionDep,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50) -> schemas.Leaderboard:
    rows = service.leaderboard(session, limit=limit)
    return schemas.Leaderboard(workers=[
        schemas.LeaderboardRow(**{**r, "status": str(r["status"]), "earnings": fmt(r["earnings"]),
                                  "rewards": fmt(r["rewards"]), "emission": fmt(r["emission"])})
        for r in rows])
