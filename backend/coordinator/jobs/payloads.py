"""Validation of what clients send (payloads) and what workers return (outputs), before anything counts."""

from __future__ import annotations

import json
import math
from typing import Any

from backend.core.config import get_settings
from backend.core.errors import Unprocessable
from backend.core.text import is_blank
from backend.models import JobType

EMBEDDING_DIM = 384
# Every worker L2-normalises (SPEC); honest fp32/fp16/bf16 outputs are within 1e-4 of norm 1. An
# unnormalised vector is refused: huge values overflow the float64 cosine into NaN, which must never
# pass as agreement, and the client is promised a unit vector (C09: norm within 1 +/- 1e-3).
NORM_TOLERANCE = 1e-3
MODEL_MAX_TOKENS = 256  # all-MiniLM-L6-v2's window, [CLS] and [SEP] included
MAX_METRICS_CHARS = 2000
OUTPUT_KEYS = {JobType.embed: {"embedding"}, JobType.rank: {"indices", "scores"}}


def check_text(value: Any, field: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise Unprocessable(f"{field} must be a string")
    if is_blank(value):
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
    extra = sorted(set(output) - OUTPUT_KEYS[job_type])
    if extra:
        # Whatever else a worker adds would reach the client inside the verified answer.
        raise Unprocessable(f"output has unexpected fields: {', '.join(map(str, extra))[:200]}")
    if job_type == JobType.embed:
        emb = output.get("embedding")
        if not isinstance(emb, list):
            raise Unprocessable("output.embedding must be a list of numbers")
        if len(emb) != EMBEDDING_DIM:
            raise Unprocessable(f"output.embedding must have exactly {EMBEDDING_DIM} numbers, got {len(emb)}")
        if not all(_finite_number(x) for x in emb):
            raise Unprocessable("output.embedding must contain only finite numbers (no NaN, Infinity or strings)")
        norm = math.sqrt(math.fsum(float(x) * float(x) for x in emb))
        if norm == 0.0:
            raise Unprocessable("output.embedding has zero norm")
        if not abs(norm - 1.0) <= NORM_TOLERANCE:
            raise Unprocessable(f"output.embedding must be L2-normalised (norm 1 +/- {NORM_TOLERANCE})")
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


def validate_metrics(job_type: JobType, payload: dict[str, Any], metrics: Any) -> None:
    """metrics_json is unsigned and its num_tokens/truncated reach the client as usage: keep them honest-shaped."""
    if metrics is None:
        return
    if not isinstance(metrics, dict):
        raise Unprocessable("metrics_json must be an object")
    try:
        size = len(json.dumps(metrics, separators=(",", ":"), default=str))
    except (ValueError, TypeError, RecursionError):
        raise Unprocessable("metrics_json cannot be encoded as JSON") from None
    if size > MAX_METRICS_CHARS:
        raise Unprocessable(f"metrics_json is {size} characters; the maximum is {MAX_METRICS_CHARS}")
    texts = 1 if job_type == JobType.embed else 1 + len(payload.get("texts") or [])
    limit = MODEL_MAX_TOKENS * texts
    tokens = metrics.get("num_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 <= tokens <= limit):
        raise Unprocessable(f"metrics_json.num_tokens must be an integer in [0, {limit}]")
    if "truncated" in metrics and not isinstance(metrics["truncated"], bool):
        raise Unprocessable("metrics_json.truncated must be a boolean")
