"""Validation of what clients send (payloads) and what workers return (outputs), before anything counts."""

from __future__ import annotations

import math
from typing import Any

from backend.core.config import get_settings
from backend.core.errors import Unprocessable
from backend.models import JobType

EMBEDDING_DIM = 384


def check_text(value: Any, field: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise Unprocessable(f"{field} must be a string")
    if not value.strip():
        raise Unprocessable(f"{field} must not be empty or only whitespace")
    if len(value) > max_chars:
        raise Unprocessable(f"{field} is {len(value)} characters; the maximum is {max_chars}")
    if "\x00" in value:
        raise Unprocessable(f"{field} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unprocessable(f"{field} contains a lone surrogate (invalid Unicode)") from None
    return value


def validate_payload(job_type: JobType, payload: Any) -> dict[str, Any]:
    s = get_settings()
    if not isinstance(payload, dict):
        raise Unprocessable("payload must be an object")
    if job_type == JobType.embed:
        return {"text": check_text(payload.get("text"), "text", s.max_text_chars)}
    query = check_text(payload.get("query"), "query", s.max_rank_text_chars)
    texts = payload.get("texts")
    if not isinstance(texts, list) or not texts:
        raise Unprocessable("texts must be a non-empty list of strings")
    if len(texts) > s.max_rank_texts:
        raise Unprocessable(f"texts has {len(texts)} items; the maximum is {s.max_rank_texts}")
    return {"query": query,
            "texts": [check_text(t, f"texts[{i}]", s.max_rank_text_chars) for i, t in enumerate(texts)]}


def _finite_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def validate_output(job_type: JobType, payload: dict[str, Any], output: Any) -> None:
    """Refuse malformed results with 422 before they can count as a verification vote."""
    if not isinstance(output, dict):
        raise Unprocessable("output must be an object")
    if job_type == JobType.embed:
        emb = output.get("embedding")
        if not isinstance(emb, list):
            raise Unprocessable("output.embedding must be a list of numbers")
        if len(emb) != EMBEDDING_DIM:
            raise Unprocessable(f"output.embedding must have exactly {EMBEDDING_DIM} numbers, got {len(emb)}")
        if not all(_finite_number(x) for x in emb):
            raise Unprocessable("output.embedding must contain only finite numbers (no NaN, Infinity or strings)")
        if math.fsum(float(x) * float(x) for x in emb) == 0.0:
            raise Unprocessable("output.embedding has zero norm")
        return
    n = len(payload["texts"])
    idx, scores = output.get("indices"), output.get("scores")
    if not isinstance(idx, list) or not isinstance(scores, list) or len(idx) != n or len(scores) != n:
        raise Unprocessable(f"output.indices and output.scores must each list {n} items")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in idx) or sorted(idx) != list(range(n)):
        raise Unprocessable(f"output.indices must be a permutation of 0..{n - 1}")
    if not all(_finite_number(x) and -1.0001 <= x <= 1.0001 for x in scores):
        raise Unprocessable("output.scores must be finite cosine scores in [-1, 1]")
    if any(scores[k] < scores[k + 1] for k in range(n - 1)):
        raise Unprocessable("output.indices must be ordered from most to least relevant")
