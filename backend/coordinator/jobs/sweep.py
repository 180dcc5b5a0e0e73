"""The liveness sweep (APScheduler, every SWEEP_INTERVAL_SECONDS): offline workers, expired leases,
overdue jobs, and queued work that found no worker at creation. Every step is a short transaction
of conditional transitions, so two coordinators sweeping at once do no harm."""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlmodel import Session, col, select

from backend.coordinator.jobs import scheduling, verification
from backend.coordinator.jobs.service import lock_job
from backend.coordinator.workers.service import mark_stale_offline
from backend.core.db import get_engine
from backend.core.metrics import JOBS_BY_STATE, WORKERS_BY_STATUS
from backend.core.security import now_utc
from backend.models import Assignment, AssignmentStatus, Job, JobStatus, JobType, Worker, WorkerStatus

log = logging.getLogger("openmesh.sweep")


def expire_leases(session: Session) -> int:
    now = now_utc()
    overdue = session.exec(select(Assignment).where(
        Assignment.status == AssignmentStatus.running, col(Assignment.lease_expires_at) < now)).all()
    jobs = set()
    for a in overdue:
        res = session.exec(update(Assignment).where(
            col(Assignment.id) == a.id, col(Assignment.status) == AssignmentStatus.running).values(
            status=AssignmentStatus.expired, reject_reason="lease expired before a valid submission"))  # type: ignore[call-overload]
        if res.rowcount:
            jobs.add(a.job_id)
    for job_id in sorted(jobs):
        scheduling.fill_job(session, job_id)
    return len(jobs)


def fail_overdue(session: Session) -> int:
    now = now_utc()
    ids = session.exec(select(Job.id).where(
        col(Job.status).in_(scheduling.OPEN_JOB_STATUSES), col(Job.deadline_at) < now)).all()
    n = 0
    for job_id in ids:
        job = lock_job(session, job_id)
        if job is not None and verification.fail(session, job, "deadline exceeded before verification",
                                                 outcome="deadline"):
            n += 1
    return n


def refresh_gauges(session: Session) -> None:
    from sqlmodel import func

    for status in WorkerStatus:
        WORKERS_BY_STATUS.labels(status.value).set(0)
    for status, n in session.exec(select(Worker.status, func.count()).group_by(Worker.status)).all():
        WORKERS_BY_STATUS.labels(status.value if hasattr(status, "value") else status).set(n)
    for status in JobStatus:
        for jt in JobType:
            JOBS_BY_STATE.labels(status.value, jt.value).set(0)
    for status, jt, n in session.exec(select(Job.status, Job.job_type, func.count())
                                      .group_by(Job.status, Job.job_type)).all():
        JOBS_BY_STATE.labels(getattr(status, "value", status), getattr(jt, "value", jt)).set(n)


def run_once() -> dict[str, int]:
    engine = get_engine()
    out: dict[str, int] = {}
    for name, step in (("offline", lambda s: len(mark_stale_offline(s))), ("leases", expire_leases),
                       ("overdue", fail_overdue), ("backlog", lambda s: scheduling.fill_backlog(s))):
        with Session(engine, expire_on_commit=False) as session:
            out[name] = step(session)
            session.commit()
    with Session(engine) as session:
        refresh_gauges(session)
    return out
