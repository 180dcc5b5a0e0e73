"""Percentiles without numpy (nearest-rank on sorted samples)."""

from __future__ import annotations

import math


def pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    s = sorted(samples)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def summary(samples_ms: list[float]) -> dict[str, float]:
    return {"n": len(samples_ms), "p50_ms": round(pct(samples_ms, 50), 3), "p99_ms": round(pct(samples_ms, 99), 3),
            "mean_ms": round(sum(samples_ms) / len(samples_ms), 3) if samples_ms else float("nan")}
