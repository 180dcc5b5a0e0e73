"""Operator rules for jobs: listing with filters, detail with assignments, demo load, cancel, requeue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, func, select

from backend.coordinator.jobs import scheduling, service as jobs, verification
from backend.core.errors import Conflict, NotFound
from backend.core.money import fmt
from backend.models import AdminAction, Assignment, Job, JobStatus, JobType, User


def _job_row(job: Job, client_email: str | None = None) -> dict[str, Any]:
    return {"id": job.id, "job_type": job.job_type.value, "status": job.status.value,
            "client_user_id": job.client_user_id, "client_email": client_email,
            "api_key_id": job.api_key_id, "is_audit": job.is_audit,
            "is_demo": job.is_demo, "price": fmt(job.price), "units": job.units,
            "replicas_needed": job.replicas_needed, "error": job.error, "request_id": job.request_id,
            "created_at": job.created_at, "finished_at": job.finished_at}


def _as_utc(moment: datetime) -> datetime:
    """A filter bound without an offset is read as UTC, the zone every stored timestamp is in."""
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment


def list_jobs(session: Session, *, status: JobStatus | None, job_type: JobType | None, client_id: int | None,
              worker_id: int | None, is_audit: bool | None, since: datetime | None, until: datetime | None,
              limit: int, offset: int) -> dict[str, Any]:
    conds = []
    if status:
        conds.append(Job.status == status)
    if job_type:
        conds.append(Job.job_type == job_type)
    if client_id is not None:
        conds.append(Job.client_user_id == client_id)
    if is_audit is not None:
        conds.append(col(Job.is_audit).is_(is_audit))
    if since:
        conds.append(col(Job.created_at) >= _as_utc(since))
    if until:
        conds.append(col(Job.created_at) < _as_utc(until))
    if worker_id is not None:
        conds.append(col(Job.id).in_(select(Assignment.job_id).where(Assignment.worker_id == worker_id)))
    total = session.exec(select(func.count()).select_from(Job).where(*conds)).one()
    rows = session.exec(select(Job, User.email).outerjoin(User, col(User.id) == Job.client_user_id).where(*conds)
                        .order_by(col(Job.id).desc()).limit(limit).offset(offset)).all()
    return {"items": [_job_row(j, email) for j, email in rows], "total": total, "limit": limit, "offset": offset}


def job_detail(session: Session, job_id: int) -> dict[str, Any]:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("Job not found")
    assignments = session.exec(select(Assignment).where(Assignment.job_id == job.id).order_by(col(Assignment.id))).all()
    client = session.get(User, job.client_user_id) if job.client_user_id is not None else None
    return {**_job_row(job, client.email if client else None), "payload": job.payload, "output": job.output, "verification": job.verification,
            "deadline_at": job.deadline_at, "usage": jobs.usage(session, job),
            "assignments": [{"id": a.id, "worker_id": a.worker_id, "status": a.status.value,
                             "similarity": a.similarity, "reject_reason": a.reject_reason,
                             "error_message": a.error_message, "output_hash": a.output_hash,
                             "created_at": a.created_at, "leased_at": a.leased_at,
                             "submitted_at": a.submitted_at, "metrics_json": a.metrics_json} for a in assignments]}


def _record(session: Session, actor: User, action: str, job_id: int, reason: str) -> None:
    session.add(AdminAction(actor_user_id=actor.id, action=action, target_type="job", target_id=job_id,
                            reason=reason))


def enqueue_demo(session: Session, actor: User, count: int, job_type: JobType | None) -> list[int]:
    created = jobs.create_demo_jobs(session, count, job_type)
    session.add(AdminAction(actor_user_id=actor.id, action="enqueue_demo", target_type="job",
                            target_id=created[0].id, reason=f"{count} demo jobs"))
    return [j.id for j in created]


def cancel(session: Session, actor: User, job_id: int, reason: str) -> dict[str, Any]:
    job = jobs.lock_job(session, job_id)
    if job is None:
        raise NotFound("Job not found")
    if not verification.fail(session, job, f"cancelled by an administrator: {reason}".strip(": "),
                             JobStatus.cancelled, outcome="cancelled"):
        raise Conflict(f"Job is already {job.status.value}")
    _record(session, actor, "cancel", job.id, reason)
    return _job_row(job)


def requeue(session: Session, actor: User, job_id: int, reason: str) -> dict[str, Any]:
    """Run an open job again on fresh workers: its unfinished assignments are dropped and refilled."""
    job = jobs.lock_job(session, job_id)
    if job is None:
        raise NotFound("Job not found")
    if job.status not in scheduling.OPEN_JOB_STATUSES:
        raise Conflict(f"Job is {job.status.value}; only queued or disputed jobs can be requeued")
    from backend.models import OPEN_ASSIGNMENT_STATUSES, AssignmentStatus

    for a in session.exec(select(Assignment).where(
            Assignment.job_id == job.id, col(Assignment.status).in_(OPEN_ASSIGNMENT_STATUSES))).all():
        a.status = AssignmentStatus.expired
        a.reject_reason = "requeued by an administrator"
        session.add(a)
    session.flush()
    scheduling.fill_job(session, job)
    _record(session, actor, "requeue", job.id, reason)
    return _job_row(job)
