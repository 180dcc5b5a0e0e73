"""Exact token amounts: Decimal in Python, integer nano-tokens in the database."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.types import TypeDecorator

SCALE = 9
QUANTUM = Decimal(1).scaleb(-SCALE)  # 0.000000001 TOK, the smallest amount the ledger holds
NANO = 10**SCALE


def to_decimal(value: Any) -> Decimal:
    """Parse an amount exactly; floats are refused because they are already inexact."""
    if isinstance(value, float):
        raise ValueError("amounts must be decimal strings or integers, not floats")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError("amount must be finite")
    if amount != amount.quantize(QUANTUM, rounding=ROUND_DOWN):
        raise ValueError(f"amounts have at most {SCALE} decimal places")
    return amount


def quantize(amount: Decimal) -> Decimal:
    """Round down to the ledger's precision (never create tokens by rounding up)."""
    return amount.quantize(QUANTUM, rounding=ROUND_DOWN)


def fmt(amount: Decimal) -> str:
    """Serialise an amount as a plain decimal string with no exponent and no trailing zeros."""
    text = format(amount.normalize(), "f")
    return text if text != "-0" else "0"


def split_bps(amount: Decimal, bps: int) -> tuple[Decimal, Decimal]:
    """Split `amount` into (share at `bps` basis points, remainder); the two add up exactly."""
    share = quantize(amount * bps / Decimal(10_000))
    return share, amount - share


def split_evenly(amount: Decimal, parts: int) -> list[Decimal]:
    """Split into `parts` shares that add up exactly; the first shares take the leftover quanta."""
    if parts <= 0:
        return []
    base = quantize(amount / parts)
    leftover = int((amount - base * parts) / QUANTUM)
    return [base + (QUANTUM if i < leftover else 0) for i in range(parts)]


class Money(TypeDecorator):
    """Stores a Decimal as integer nano-tokens, so SQLite and PostgreSQL give identical results."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(to_decimal(value) * NANO)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-SCALE)
