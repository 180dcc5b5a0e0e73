"""Pricing rules: what a job costs, computed from its payload before any work starts.

    price_job(job_type, payload, settings) -> (units, price)

units = ceil(chars / settings.unit_chars), at least 1, where chars counts the text the workers read:
embed → `text` (or every string of `texts`, for batch payloads), rank → `query` plus every text.
price = max(units × settings.unit_cost_<type>, settings.min_charge), quantized down to the ledger's
precision. The estimate is the final price: what admission reserves is exactly what settlement charges.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backend.core.config import Settings, get_settings
from backend.core.money import quantize


def payload_chars(job_type: str, payload: dict[str, Any]) -> int:
    """Characters of input text a job carries (the size the price is based on)."""
    def _len(value: Any) -> int:
        return len(value) if isinstance(value, str) else 0

    def _many(values: Any) -> int:
        return sum(_len(v) for v in values) if isinstance(values, list) else 0

    kind = str(job_type)
    if kind == "rank":
        return _len(payload.get("query")) + _many(payload.get("texts"))
    # embed: a single text, or a batch of texts
    return _len(payload.get("text")) + _many(payload.get("texts"))


def price_job(job_type: str, payload: dict[str, Any],
              settings: Settings | None = None) -> tuple[int, Decimal]:
    """(units, price) of a job: at least one unit, never below the minimum charge."""
    s = settings or get_settings()
    kind = str(job_type)
    if kind not in ("embed", "rank"):
        raise ValueError(f"unknown job type: {job_type!r}")
    chars = payload_chars(kind, payload)
    unit_chars = max(1, int(s.unit_chars))
    units = max(1, -(-chars // unit_chars))  # ceil without floats
    unit_cost = s.unit_cost_rank if kind == "rank" else s.unit_cost_embed
    price = quantize(max(Decimal(units) * Decimal(unit_cost), Decimal(s.min_charge)))
    return units, price
