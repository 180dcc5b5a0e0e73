"""The job lifecycle: admission (price, reserve, create, assign), polling, signed submissions, results."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

import nacl.exceptions
import nacl.signing
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from backend.coordinator.jobs import verification, views
from backend.coordinator.jobs.payloads import validate_metrics, validate_output, validate_payload
from backend.coordinator.jobs.scheduling import create_job, fill_backlog
from backend.coordinator.jobs.schemas import SubmitIn, SubmitItem
from backend.coordinator.ledger import pricing
from backend.coordinator.ledger import service as ledger
from backend.coordinator.workers.service import require_can_work, touch
from backend.core.canonical import b64url_decode, output_hash, signing_payload
from backend.core.config import get_settings
from backend.core.errors import BadRequest, Conflict, DomainError, NotFound, Unprocessable
from backend.core.metrics import JOBS_CREATED, QUEUE_WAIT
from backend.core.security import constant_time_equals, now_utc
from backend.models import (
    TERMINAL_JOB_STATUSES,
    ApiKey,
    Assignment,
    AssignmentStatus,
    Job,
    JobStatus,
    JobType,
    Worker,
)

log = logging.getLogger("openmesh.jobs")


def lock_job(session: Session, job_id: int) -> Job | None:
    """The job row, locked for this transaction (SQLite: the write lock is already held)."""
    return session.exec(select(Job).where(Job.id == job_id).with_for_update()
                        .execution_options(populate_existing=True)).first()


# --- admission -----------------------------------------------------------------------------------

def admit(session: Session, key: ApiKey, job_type: JobType, payload: dict[str, Any],
          request_id: str | None) -> Job:
    """Validate, price, reserve the price (402 if it does not fit) and create the assigned job."""
    payload = validate_payload(job_type, payload)
    units, price = pricing.price_job(job_type, payload, get_settings())
    ledger.reserve(session, user_id=key.user_id, amount=price)
    job = create_job(session, job_type=job_type, payload=payload, client_user_id=key.user_id,
                     api_key_id=key.id, request_id=request_id, price=price, units=units)
    JOBS_CREATED.labels(job_type.value, "client").inc()
    maybe_audit(session, job_type)
    return job


def admit_batch(session: Session, key: ApiKey, job_type: JobType, payloads: list[dict[str, Any]],
                request_id: str | None) -> list[Job]:
    """All or nothing: one failing payload or an unaffordable total admits none."""
    checked = []
    for i, p in enumerate(payloads):
        try:
            checked.append(validate_payload(job_type, p))
        except Unprocessable as exc:
            raise Unprocessable(f"payloads[{i}]: {exc.detail}") from None
    return [admit(session, key, job_type, p, request_id) for p in checked]


def maybe_audit(session: Session, job_type: JobType) -> Job | None:
    """Mix in a known-answer job: the payload and verified output of an earlier client job.

    It is created exactly like a client job (same payload shape, one replica), so a worker cannot
    tell an audit from real traffic; a wrong answer counts as a rejection.
    """
    rate = get_settings().audit_rate
    if rate <= 0 or random.random() >= rate:
        return None
    max_id = session.exec(select(func.max(Job.id)).where(
        Job.job_type == job_type, Job.status == JobStatus.verified, col(Job.is_audit).is_(False),
        col(Job.replicas_needed) >= 2)).one()
    if not max_id:
        return None
    source = session.exec(select(Job).where(
        Job.job_type == job_type, Job.status == JobStatus.verified, col(Job.is_audit).is_(False),
        col(Job.replicas_needed) >= 2, Job.id >= random.randint(1, max_id)).order_by(col(Job.id)).limit(1)).first()
    if source is None or source.output is None:
        return None
    JOBS_CREATED.labels(job_type.value, "audit").inc()
    return create_job(session, job_type=job_type, payload=source.payload, is_audit=True,
                      expected_output=source.output)


def create_demo_jobs(session: Session, count: int, job_type: JobType | None) -> list[Job]:
    samples = [
        (JobType.embed, {"text": "OpenMesh é uma rede distribuída."}),
        (JobType.rank, {"query": "infra distribuída", "texts": ["OpenMesh", "banco relacional", "fila assíncrona"]}),
        (JobType.embed, {"text": "Verified embeddings from independent workers."}),
        (JobType.rank, {"query": "fast vector search", "texts": ["approximate nearest neighbours", "a cooking blog",
                                                                  "inverted file index"]}),
    ]
    pool = [s for s in samples if job_type is None or s[0] == job_type]
    jobs = []
    for i in range(count):
        jt, payload = pool[i % len(pool)]
        jobs.append(create_job(session, job_type=jt, payload=dict(payload), is_demo=True))
        JOBS_CREATED.labels(jt.value, "demo").inc()
    return jobs


# --- worker side ---------------------------------------------------------------------------------

def has_pending(session: Session, worker_id: int) -> bool:
    """Whether the worker has an assignment to lease (a read: an empty long-poll takes no write lock)."""
    a = Assignment.__table__  # type: ignore[attr-defined]
    return session.execute(select(a.c.id).where(a.c.worker_id == worker_id, a.c.status == AssignmentStatus.pending)
                           .limit(1)).first() is not None


def claim(session: Session, worker: Worker, max_items: int) -> list[dict[str, Any]]:
    """Lease the worker's oldest pending assignments; each poll also counts as a heartbeat."""
    require_can_work(worker)
    touch(session, worker)
    return lease(session, worker.id, max_items)  # type: ignore[arg-type]


def lease(session: Session, worker_id: int, max_items: int) -> list[dict[str, Any]]:
    """Mark up to max_items pending assignments running, in one conditional UPDATE ... RETURNING.

    The status condition means two concurrent polls of one worker never lease the same assignment,
    and an assignment released meanwhile (drain, ban, offline) is not leased at all.
    """
    a, j = Assignment.__table__, Job.__table__  # type: ignore[attr-defined]
    now = now_utc()
    oldest = (select(a.c.id).where(a.c.worker_id == worker_id, a.c.status == AssignmentStatus.pending)
              .order_by(a.c.id).limit(max_items).scalar_subquery())
    leased = session.execute(
        update(a).where(a.c.id.in_(oldest), a.c.status == AssignmentStatus.pending)
        .values(status=AssignmentStatus.running, leased_at=now,
                lease_expires_at=now + timedelta(seconds=get_settings().assignment_lease_seconds))
        .returning(a.c.id, a.c.job_id, a.c.nonce)).all()
    if not leased:
        return []
    jobs = {row.id: row for row in session.execute(
        select(j.c.id, j.c.job_type, j.c.payload, j.c.request_id, j.c.created_at)
        .where(j.c.id.in_([r.job_id for r in leased]))).all()}
    items = []
    for assignment_id, job_id, nonce in sorted(leased):
        job = jobs[job_id]
        QUEUE_WAIT.observe(max(0.0, (now - job.created_at).total_seconds()))
        items.append({"assignment_id": assignment_id, "nonce": nonce,
                      "job": {"job_id": job.id, "job_type": JobType(job.job_type).value, "payload": job.payload,
                              "request_id": job.request_id}})
    return items


def _verify_signature(worker: Worker, body: SubmitItem) -> None:
    if not worker.public_key:
        raise BadRequest("Worker has no public key")
    try:
        key_bytes = b64url_decode(worker.public_key)
        verify_key = nacl.signing.VerifyKey(key_bytes)
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise BadRequest("Worker public key is malformed") from None
    try:
        sig = b64url_decode(body.signature)
    except ValueError:
        raise BadRequest("Malformed signature: not base64url") from None
    if len(sig) != 64:
        raise BadRequest(f"Malformed signature: expected 64 bytes, got {len(sig)}")
    try:
        verify_key.verify(signing_payload(body.assignment_id, body.nonce, body.output_hash), sig)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise BadRequest("Signature verification failed") from None


def submit(session: Session, worker: Worker, body: SubmitIn) -> dict[str, Any]:
    require_can_work(worker)
    a = Assignment.__table__  # type: ignore[attr-defined]
    job_id = session.execute(select(a.c.job_id).where(a.c.id == body.assignment_id,
                                                      a.c.worker_id == worker.id)).scalar()
    if job_id is None:
        raise NotFound("Assignment not found")
    job = _lock_for_results(session, worker, {job_id})[job_id]
    result = _submit_locked(session, worker, body, job)
    _after_results(session, worker)
    return result


def submit_many(session: Session, worker: Worker, bodies: list[SubmitItem]) -> list[dict[str, Any]]:
    """A worker's whole batch in one transaction; each result answered on its own (never all-or-nothing),
    in request order. Every job of the batch, and every worker its verdicts may touch, is locked up front
    in id order (_lock_for_results): two batches, or a batch and a single submit, never meet in a cycle.
    """
    require_can_work(worker)
    a = Assignment.__table__  # type: ignore[attr-defined]
    job_of = dict(session.execute(select(a.c.id, a.c.job_id).where(
        a.c.id.in_({b.assignment_id for b in bodies}), a.c.worker_id == worker.id)).all())
    jobs = _lock_for_results(session, worker, set(job_of.values())) if job_of else {}
    answers: dict[int, dict[str, Any]] = {}
    # Request order, as the same results sent one by one would be judged (a strike late in the batch
    # cannot refuse an earlier result); every lock a verdict needs is already held.
    for i, body in enumerate(bodies):
        try:
            require_can_work(worker)  # a strike earlier in this batch may have banned it
            job = jobs.get(job_of.get(body.assignment_id, -1))
            if job is None:
                raise NotFound("Assignment not found")
            answers[i] = {"status_code": 200, **_submit_locked(session, worker, body, job)}
        except DomainError as exc:
            answers[i] = {"assignment_id": body.assignment_id, "status_code": exc.status_code, "detail": exc.detail}
    _after_results(session, worker)
    return [answers[i] for i in range(len(bodies))]


def _lock_for_results(session: Session, worker: Worker, job_ids: set[int]) -> dict[int, Job]:
    """Lock the jobs (id order), then every worker row their verdicts may update (id order).

    All of it up front: a transaction that settles several jobs, or that takes one more lock after it
    has written rows, would otherwise meet another in a cycle (PostgreSQL deadlock). SQLite already
    holds its single write lock.
    """
    jobs = {j.id: j for j in session.exec(
        select(Job).where(col(Job.id).in_(job_ids)).order_by(col(Job.id)).with_for_update()
        .execution_options(populate_existing=True)).all()}
    if session.get_bind().dialect.name == "postgresql":
        a = Assignment.__table__  # type: ignore[attr-defined]
        ids = set(session.execute(select(a.c.worker_id).where(a.c.job_id.in_(job_ids))).scalars()) | {worker.id}
        session.exec(select(Worker.id).where(col(Worker.id).in_(ids)).order_by(col(Worker.id))
                     .with_for_update(key_share=True)).all()
    return jobs  # type: ignore[return-value]


def _after_results(session: Session, worker: Worker) -> None:
    # Liveness (this worker's row is already locked with the others, _lock_for_results).
    touch(session, worker)
    # The slot this result freed goes at once to a job that found no free worker at creation, instead
    # of waiting for the next sweep (a worker with max_concurrency 1 would otherwise idle between sweeps).
    fill_backlog(session, limit=8, only_if_waiting=True)
    session.flush()


def _submit_locked(session: Session, worker: Worker, body: SubmitItem, job: Job) -> dict[str, Any]:
    """One result, its job already locked by this transaction."""
    # Read after the job's lock: a concurrent submit of the same assignment has committed by now.
    assignment = session.get(Assignment, body.assignment_id, populate_existing=True)
    assert assignment is not None
    if assignment.status in verification.RESULT_STATUSES:
        raise Conflict("Assignment already submitted")
    if assignment.status != AssignmentStatus.running:
        raise Conflict(f"Assignment is {assignment.status.value}, not awaiting a result")
    if assignment.lease_expires_at and assignment.lease_expires_at < now_utc():
        raise Conflict("Assignment lease expired")
    if not constant_time_equals(body.nonce, assignment.nonce):
        raise BadRequest("Invalid nonce")
    if body.error_message is not None and body.output is None:
        _verify_signature(worker, body)
        return _give_up(session, assignment, job, body.error_message)
    if body.output is None:
        raise Unprocessable("output is required (or error_message to give the assignment back)")
    try:
        validate_output(job.job_type, job.payload, body.output)
    except Unprocessable as exc:
        _strike_if_signed(session, worker, assignment, body, exc)
        raise
    validate_metrics(job.job_type, job.payload, body.metrics_json)
    try:
        computed = output_hash(body.output)
    except (ValueError, UnicodeEncodeError):
        raise Unprocessable("output cannot be encoded as canonical JSON") from None
    if computed != body.output_hash.lower():
        raise BadRequest("Output hash does not match the output")
    _verify_signature(worker, body)
    assignment.status = AssignmentStatus.submitted
    assignment.submitted_at = now_utc()
    assignment.output = body.output
    assignment.output_hash = body.output_hash.lower()
    assignment.signature = body.signature
    assignment.metrics_json = body.metrics_json
    session.add(assignment)
    session.flush()
    verification.evaluate(session, job)
    return {"assignment_id": assignment.id, "status": assignment.status.value, "job_status": job.status.value}


class SignedInvalidOutput(Unprocessable):
    """422 for an output the worker signed: not a vote, but a strike the caller must commit."""


def _strike_if_signed(session: Session, worker: Worker, assignment: Assignment, body: SubmitItem,
                      exc: Unprocessable) -> None:
    """A malformed output (e.g. a zero vector) that the worker hashed and signed is a deliberate answer.

    It stays a 422 and never counts as a verification vote, and the assignment stays usable until
    its lease ends; but it counts as a rejection towards the fraud threshold, so a worker that keeps
    signing garbage is banned instead of stalling every job it takes for a lease timeout. Unsigned
    or mismatched bodies (transport or client bugs) cost nothing.
    """
    try:
        if output_hash(body.output) != body.output_hash.lower():
            return
        _verify_signature(worker, body)
    except (BadRequest, ValueError, TypeError, UnicodeEncodeError):
        return
    reason = f"signed an invalid output: {exc.detail}"
    assignment.reject_reason = reason
    session.add(assignment)
    verification.penalize(session, worker.id, reason)
    session.flush()
    raise SignedInvalidOutput(exc.detail) from None


def _give_up(session: Session, assignment: Assignment, job: Job, message: str) -> dict[str, Any]:
    """A worker that cannot compute hands the assignment back; another worker takes it."""
    from backend.coordinator.jobs.scheduling import fill_job

    assignment.status = AssignmentStatus.expired
    assignment.error_message = message[:2000]
    session.add(assignment)
    session.flush()
    fill_job(session, job)
    return {"assignment_id": assignment.id, "status": assignment.status.value, "job_status": job.status.value}


# --- results -------------------------------------------------------------------------------------

def cancel_if_open(session: Session, job_id: int, reason: str) -> bool:
    job = lock_job(session, job_id)
    return job is not None and verification.fail(session, job, reason, JobStatus.cancelled, outcome="timeout")


def accepted_assignments(session: Session, job_id: int) -> list[Assignment]:
    return list(session.exec(select(Assignment).where(
        Assignment.job_id == job_id, Assignment.status == AssignmentStatus.accepted)).all())


def usage(session: Session, job: Job) -> dict[str, Any]:
    """Tokens as counted by the verified workers' tokenizer (metrics_json), truncation flag."""
    return views.usage(job, accepted_assignments(session, job.id))  # type: ignore[arg-type]


def result_view(session: Session, job: Job) -> dict[str, Any]:
    return views.result_view(job, accepted_assignments(session, job.id))  # type: ignore[arg-type]


def is_terminal(job: Job) -> bool:
    return job.status in TERMINAL_JOB_STATUSES
