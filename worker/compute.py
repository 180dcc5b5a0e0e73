"""Job computation: embed and rank outputs from one encoder call per batch, plus per-job metrics."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.config import EMBEDDING_DIM
from worker.model import Encoder

JOB_TYPES = ("embed", "rank")


class InvalidJob(ValueError):
    """The job's type or payload cannot be computed (reported back as error_message)."""


@dataclass
class JobResult:
    """One job's output (or error) and the metrics reported in metrics_json."""

    output: dict[str, Any] | None
    num_tokens: int = 0
    truncated: bool = False
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def _texts_for(job_type: str, payload: Any) -> list[str]:
    """The texts a job embeds, in order: embed → [text]; rank → [query, *texts]."""
    if not isinstance(payload, dict):
        raise InvalidJob("payload must be an object")
    if job_type == "embed":
        text = payload.get("text")
        if not isinstance(text, str):
            raise InvalidJob("embed payload needs a string 'text'")
        return [text]
    if job_type == "rank":
        query, texts = payload.get("query"), payload.get("texts")
        if not isinstance(query, str):
            raise InvalidJob("rank payload needs a string 'query'")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidJob("rank payload needs a non-empty list of strings 'texts'")
        return [query, *texts]
    raise InvalidJob(f"unknown job_type {job_type!r}")


def _embed_output(vector: np.ndarray) -> dict[str, Any]:
    values = vector.astype(np.float32).tolist()
    if len(values) != EMBEDDING_DIM or not all(math.isfinite(v) for v in values):
        raise InvalidJob("encoder produced a non-finite or wrong-length embedding")
    return {"embedding": values}


def _rank_output(query: np.ndarray, texts: np.ndarray) -> dict[str, Any]:
    scores = (texts.astype(np.float32) @ query.astype(np.float32)).astype(np.float32).tolist()
    if not all(math.isfinite(s) for s in scores):
        raise InvalidJob("encoder produced non-finite scores")
    # Most relevant first; equal scores keep the lower position first (SPEC).
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return {"indices": order, "scores": [scores[i] for i in order]}


def compute_batch(jobs: list[tuple[str, Any]], encoder: Encoder) -> list[JobResult]:
    """Compute many (job_type, payload) jobs with ONE encoder call; invalid jobs get an error result."""
    spans: list[tuple[int, int] | None] = []
    results: list[JobResult | None] = []
    texts: list[str] = []
    for job_type, payload in jobs:
        try:
            job_texts = _texts_for(job_type, payload)
        except InvalidJob as exc:
            spans.append(None)
            results.append(JobResult(output=None, error=str(exc)))
            continue
        spans.append((len(texts), len(texts) + len(job_texts)))
        results.append(None)
        texts.extend(job_texts)

    started = time.perf_counter()
    try:
        if texts:
            vectors, token_counts, truncated = encoder.encode(texts)
        else:
            vectors, token_counts, truncated = np.zeros((0, EMBEDDING_DIM), np.float32), [], []
    except Exception as exc:
        # One bad text (e.g. a lone surrogate the tokenizer refuses) must not fail its batch-mates:
        # retry job by job so only the offending job reports an error.
        if sum(span is not None for span in spans) > 1:
            return [compute_batch([job], encoder)[0] for job in jobs]
        error = f"encode failed: {type(exc).__name__}: {exc}"[:300]
        return [r if r is not None else JobResult(output=None, error=error) for r in results]
    compute_ms = round((time.perf_counter() - started) * 1000.0, 3)

    final: list[JobResult] = []
    for (job_type, _payload), span, result in zip(jobs, spans, results, strict=True):
        if span is None:
            assert result is not None
            final.append(result)
            continue
        lo, hi = span
        try:
            output = (
                _embed_output(vectors[lo])
                if job_type == "embed"
                else _rank_output(vectors[lo], vectors[lo + 1 : hi])
            )
            job_result = JobResult(
                output=output, num_tokens=int(sum(token_counts[lo:hi])), truncated=bool(any(truncated[lo:hi]))
            )
        except InvalidJob as exc:
            job_result = JobResult(output=None, error=str(exc))
        job_result.metrics = {
            "num_tokens": job_result.num_tokens,
            "truncated": job_result.truncated,
            "compute_ms": compute_ms,
            "backend": getattr(encoder, "backend", "unknown"),
            "batch_size": len(jobs),
        }
        final.append(job_result)
    return final


def compute(job_type: str, payload: Any, encoder: Encoder) -> JobResult:
    """Compute one job (embed or rank) with one encoder call."""
    return compute_batch([(job_type, payload)], encoder)[0]
