"""What a client (through the gateway) sees of a finished job, built from rows already in hand."""

from __future__ import annotations

from typing import Any

from backend.core.money import fmt
from backend.models import Assignment, Job, JobStatus


def usage(job: Job, accepted: list[Assignment]) -> dict[str, Any]:
    """Tokens as counted by the verified workers' tokenizer (metrics_json), truncation flag."""
    tokens, truncated = 0, False
    for a in accepted:
        m = a.metrics_json or {}
        if isinstance(m.get("num_tokens"), int):
            tokens = max(tokens, m["num_tokens"])
        truncated = truncated or bool(m.get("truncated"))
    return {"tokens": tokens, "truncated": truncated, "units": job.units}


def result_view(job: Job, accepted: list[Assignment]) -> dict[str, Any]:
    verified = job.status == JobStatus.verified
    return {"job_id": job.id, "job_type": job.job_type.value, "status": job.status.value,
            "output": job.output if verified else None,
            "verification": job.verification, "usage": usage(job, accepted),
            "price": fmt(job.price) if verified else "0",
            "error": job.error, "created_at": job.created_at, "finished_at": job.finished_at,
            "request_id": job.request_id}
