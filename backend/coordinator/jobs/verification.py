"""Deciding a job's answer: compare results, settle disputes, audit known answers, move reputation.

Agreement is by similarity in float64, never by output_hash: honest workers on different batch
sizes or runtimes differ in the last bits. Embeddings agree at cosine >= SIMILARITY_THRESHOLD
(0.9999 by default: honest fp32 workers reach 0.9999999, the embedding of a one-word-different text
only 0.98-0.99). Rank results agree when every text's score matches within RANK_SCORE_TOLERANCE,
so a near-tie ordered differently never causes a false dispute.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlmodel import Session, col, select

from backend.coordinator.jobs import notify, views
from backend.core.config import get_settings
from backend.core.metrics import JOBS_FINISHED, VERIFICATIONS
from backend.core.security import now_utc
from backend.models import OPEN_ASSIGNMENT_STATUSES, Assignment, AssignmentStatus, Job, JobStatus, JobType, Worker

log = logging.getLogger("openmesh.verification")

RESULT_STATUSES = (AssignmentStatus.submitted, AssignmentStatus.accepted, AssignmentStatus.rejected)


def cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    if na == 0 or nb == 0:
        return 0.0
    return max(-1.0, min(1.0, dot / (na * nb)))


def compare(job_type: JobType, a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, float]:
    """(agree, similarity): cosine for embeddings, 1 - largest score gap for rank results."""
    settings = get_settings()
    if job_type == JobType.embed:
        ea, eb = a.get("embedding"), b.get("embedding")
        if not isinstance(ea, list) or not isinstance(eb, list) or len(ea) != len(eb):
            return False, 0.0
        sim = cosine(ea, eb)
        return sim >= settings.similarity_threshold, sim
    sa, sb = _scores_by_text(a), _scores_by_text(b)
    if sa is None or sb is None or sa.keys() != sb.keys():
        return False, 0.0
    gap = max((abs(sa[i] - sb[i]) for i in sa), default=0.0)
    return gap <= settings.rank_score_tolerance, 1.0 - gap


def _agreement(job_type: JobType, similarity: float | None) -> dict[str, float | None]:
    """A worker's agreement with the answer, in the receipt's own metric (rank: the score gap)."""
    if job_type == JobType.embed or similarity is None:
        return {"similarity": similarity}
    return {"max_score_gap": round(1.0 - similarity, 12)}


def _scores_by_text(out: dict[str, Any]) -> dict[int, float] | None:
    idx, sc = out.get("indices"), out.get("scores")
    if not isinstance(idx, list) or not isinstance(sc, list) or len(idx) != len(sc):
        return None
    return {int(i): float(s) for i, s in zip(idx, sc, strict=True)}


def canonical_rank_output(out: dict[str, Any]) -> dict[str, Any]:
    """Order from the verified scores: most relevant first, ties by lower position."""
    scores = _scores_by_text(out) or {}
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return {"indices": order, "scores": [scores[i] for i in order]}


def evaluate(session: Session, job: Job) -> None:
    """Called (with the job row locked) after every accepted submission."""
    if job.status not in (JobStatus.queued, JobStatus.disputed):
        return
    assignments = session.exec(select(Assignment).where(Assignment.job_id == job.id)
                               .order_by(col(Assignment.submitted_at), col(Assignment.id))).all()
    results = [a for a in assignments if a.status in RESULT_STATUSES and a.output is not None]
    if not results:
        return
    if job.is_audit and job.expected_output is not None:
        _finalize(session, job, job.expected_output, "audit", results, assignments)
        return
    if job.replicas_needed == 1:
        _finalize(session, job, results[0].output, "single", results, assignments)
        return
    for i, first in enumerate(results):
        for second in results[i + 1:]:
            if compare(job.job_type, first.output, second.output)[0]:
                _finalize(session, job, first.output, "dispute" if job.status == JobStatus.disputed else "pair",
                          results, assignments)
                return
    if any(a.status in OPEN_ASSIGNMENT_STATUSES for a in assignments):
        return  # a replica is still computing
    from backend.coordinator.jobs.scheduling import fill_job

    if len(results) < job.replicas_needed:
        # Too few results to disagree: a replica found no free worker at creation, or its lease ran
        # out. Place it (now, or from the backlog sweep) instead of calling this a dispute.
        fill_job(session, job)
        return
    settings = get_settings()
    if len(results) >= settings.replicas + settings.max_extra_replicas:
        fail(session, job, f"no two of {len(results)} workers agreed", JobStatus.failed, outcome="no_agreement")
        return
    if job.status == JobStatus.queued:
        VERIFICATIONS.labels("disputed").inc()
    job.status = JobStatus.disputed
    job.replicas_needed = len(results) + 1
    session.add(job)
    fill_job(session, job)


def _finalize(session: Session, job: Job, answer: dict[str, Any], method: str,
              results: list[Assignment], assignments: list[Assignment]) -> None:
    settings = get_settings()
    if job.job_type == JobType.rank:
        answer = canonical_rank_output(answer)
    # The worker rows this verdict updates, in one query. Their locks are already held: the submit paths
    # take them up front, in id order, with the jobs (jobs.service._lock_for_results).
    session.exec(select(Worker).where(col(Worker.id).in_({a.worker_id for a in results}))).all()
    accepted: list[Assignment] = []
    for a in results:
        if a.status != AssignmentStatus.submitted:
            continue
        ok, sim = compare(job.job_type, answer, a.output)
        a.similarity = sim
        if ok:
            a.status = AssignmentStatus.accepted
            accepted.append(a)
        else:
            a.status = AssignmentStatus.rejected
            a.reject_reason = (f"{'audit: ' if method == 'audit' else ''}result disagrees with the verified "
                               f"answer (similarity {sim:.6f} < required)")
        session.add(a)
        _adjust_reputation(session, a.worker_id, ok, a.reject_reason)
    if method == "audit" and not accepted:
        # A failed audit proves nothing to a client (there is none); the job just ends.
        _close(session, job, JobStatus.failed, error="audit answer was wrong")
        VERIFICATIONS.labels("audit_failed").inc()
        return
    if method == "audit":
        VERIFICATIONS.labels("audit_passed").inc()
    else:
        VERIFICATIONS.labels("verified" if method != "dispute" else "dispute_resolved").inc()
    job.output = answer
    job.verification = {
        "method": method,
        "threshold": settings.similarity_threshold if job.job_type == JobType.embed else settings.rank_score_tolerance,
        "metric": "cosine" if job.job_type == JobType.embed else "max_score_gap",
        "verified_at": now_utc().isoformat().replace("+00:00", "Z"),
        # Everything a client needs to check each signature itself: the signed bytes are the canonical
        # JSON of {assignment_id, nonce, output_hash}, verified with the worker's Ed25519 public key.
        "workers": [{"worker_id": a.worker_id, "assignment_id": a.id, "nonce": a.nonce,
                     "output_hash": a.output_hash, "signature": a.signature,
                     "public_key": session.get(Worker, a.worker_id).public_key,
                     **_agreement(job.job_type, a.similarity)} for a in accepted],
        "rejected_workers": [a.worker_id for a in results if a.status == AssignmentStatus.rejected],
    }
    _close(session, job, JobStatus.verified, assignments=assignments)
    if job.client_user_id is not None and not job.is_audit:
        from backend.coordinator.ledger import service as ledger

        owners = [(a.worker_id, session.get(Worker, a.worker_id).owner_user_id) for a in accepted]
        ledger.settle_job(session, job=job, rewarded_workers=owners, reserved_amount=job.price)
    # The held gateway request gets its answer with the wake-up, instead of reading it back.
    notify.defer(session, notify.job_topic(job.id), payload=views.result_view(job, accepted))


def _adjust_reputation(session: Session, worker_id: int, ok: bool, reason: str | None) -> None:
    settings = get_settings()
    worker = session.get(Worker, worker_id)
    if worker is None:
        return
    if ok:
        worker.verified_count += 1
        worker.reputation = min(1.0, round(worker.reputation + settings.reputation_verified_delta, 6))
    else:
        worker.rejected_count += 1
        worker.reputation = max(0.0, round(worker.reputation - settings.reputation_rejected_delta, 6))
        VERIFICATIONS.labels("rejected_result").inc()
    session.add(worker)
    if not ok and worker.rejected_count >= settings.fraud_threshold and worker.status != "banned":
        from backend.coordinator.workers.service import ban

        log.warning("worker banned", extra={"worker_id": worker.id, "rejections": worker.rejected_count})
        ban(session, None, worker, f"{worker.rejected_count} rejected results (last: {reason})")


def penalize(session: Session, worker_id: int, reason: str) -> None:
    """One rejection outside a vote (a signed invalid output): reputation, count, ban at the threshold."""
    _adjust_reputation(session, worker_id, False, reason)


def _close(session: Session, job: Job, status: JobStatus, error: str | None = None,
           assignments: list[Assignment] | None = None) -> None:
    """End the job; its unfinished assignments are cancelled. `assignments`: all of the job's rows,
    already loaded under the job's lock (only leasing changes them without it, pending -> running,
    and both count as open)."""
    job.status = status
    job.error = error
    job.finished_at = now_utc()
    session.add(job)
    if assignments is None:
        assignments = list(session.exec(select(Assignment).where(
            Assignment.job_id == job.id, col(Assignment.status).in_(OPEN_ASSIGNMENT_STATUSES))).all())
    for a in assignments:
        if a.status not in OPEN_ASSIGNMENT_STATUSES:
            continue
        a.status = AssignmentStatus.cancelled
        session.add(a)
    JOBS_FINISHED.labels(job.job_type.value, status.value).inc()
    notify.defer(session, notify.job_topic(job.id))


def fail(session: Session, job: Job, reason: str, status: JobStatus = JobStatus.failed,
         outcome: str = "failed") -> bool:
    """End an open job without an answer and give the client's reservation back. False if already final."""
    if job.status not in (JobStatus.queued, JobStatus.disputed):
        return False
    for a in session.exec(select(Assignment).where(
            Assignment.job_id == job.id, Assignment.status == AssignmentStatus.submitted)).all():
        a.status = AssignmentStatus.cancelled
        a.reject_reason = f"job ended without a verdict: {reason}"
        session.add(a)
    _close(session, job, status, error=reason)
    VERIFICATIONS.labels(outcome).inc()
    if job.client_user_id is not None and job.price > 0 and not job.is_audit:
        from backend.coordinator.ledger import service as ledger

        ledger.release(session, user_id=job.client_user_id, amount=job.price)
    return True
