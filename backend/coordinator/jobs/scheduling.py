"""Who runs what: creating jobs and handing their assignments to the best eligible workers.

Assignment happens the moment a job is created (and again whenever a replica is lost or a dispute
needs one more); workers are woken through notify, so nothing waits on a timer.
Preference: higher reputation, then lower estimated latency, then fewer active assignments,
within each worker's max_concurrency; replicas of one job go to distinct owners where possible.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import event, update
from sqlmodel import Session, col, func, select

from backend.coordinator.jobs import notify
from backend.coordinator.workers.service import active_counts
from backend.core.config import get_settings
from backend.core.security import new_nonce, now_utc
from backend.models import Assignment, AssignmentStatus, Job, JobStatus, JobType, User, Worker, WorkerStatus

# Assignments that still count as a replica of the job (done, or possibly coming).
LIVE_STATUSES = (AssignmentStatus.pending, AssignmentStatus.running, AssignmentStatus.submitted,
                 AssignmentStatus.accepted)
OPEN_JOB_STATUSES = (JobStatus.queued, JobStatus.disputed)


def eligible_workers(session: Session) -> list[tuple[Worker, int]]:
    """Online, recently heard from, owned by an active account, and with a free slot; best first."""
    cutoff = now_utc() - timedelta(seconds=get_settings().heartbeat_timeout_seconds)
    workers = session.exec(select(Worker).join(User, col(User.id) == col(Worker.owner_user_id)).where(
        Worker.status == WorkerStatus.online, col(Worker.last_seen_at) >= cutoff, col(User.is_active).is_(True))).all()
    if not workers:
        return []
    counts = active_counts(session, [w.id for w in workers])
    ranked = [(w, counts.get(w.id, 0)) for w in workers if counts.get(w.id, 0) < w.max_concurrency]
    ranked.sort(key=lambda wa: (-wa[0].reputation, wa[0].estimated_latency_ms, wa[1], wa[0].id))
    return ranked


def fill_job(session: Session, job: Job | int, candidates: list[tuple[Worker, int]] | None = None,
             *, new: bool = False) -> set[int]:
    """Create the assignments the job still lacks; returns the workers given one (woken on commit).
    `new`: the job was created in this transaction and has no assignment yet."""
    if isinstance(job, int):
        # By id (sweep, drain, ban): lock it like every other writer of its assignments, so two
        # fills of one job never insert the same (job, worker) row. Callers go in job id order.
        job = session.exec(select(Job).where(Job.id == job).with_for_update()
                           .execution_options(populate_existing=True)).first()
    if job is None or job.status not in OPEN_JOB_STATUSES:
        return set()
    existing = [] if new else session.exec(select(Assignment).where(Assignment.job_id == job.id)).all()
    live = [a for a in existing if a.status in LIVE_STATUSES]
    needed = job.replicas_needed - len(live)
    if needed <= 0:
        return set()
    # Unique (job, worker): a worker holds one assignment row per job. A row that merely lapsed (lease
    # expired, or the worker went offline before returning anything) may be handed to the same worker
    # again, after every fresh worker: otherwise one lost poll response dead-ends the job in a small pool.
    by_worker = {a.worker_id: a for a in existing}
    again = {a.worker_id for a in existing
             if a.status == AssignmentStatus.expired and a.output is None and a.error_message is None}
    pool = candidates if candidates is not None else eligible_workers(session)
    candidates = ([c for c in pool if c[0].id not in by_worker]
                  + [c for c in pool if c[0].id in again])
    if not candidates:
        _mark_waiting(session)
        return set()
    owners = {session.get(Worker, a.worker_id).owner_user_id for a in live} if live else set()
    chosen: list[Worker] = []
    # First pass: owners not yet on the job; second pass: anyone (a small pool still gets answers).
    for distinct in (True, False):
        for worker, _ in candidates:
            if len(chosen) >= needed:
                break
            if worker in chosen or (distinct and worker.owner_user_id in owners):
                continue
            chosen.append(worker)
            owners.add(worker.owner_user_id)
    if len(chosen) < needed:
        _mark_waiting(session)
    now = now_utc()
    lease = timedelta(seconds=get_settings().assignment_lease_seconds)
    placed: list[tuple[Assignment, bool]] = []
    for worker in chosen:
        # A worker whose long-poll waits in this process gets the assignment leased now and handed
        # over on commit (notify.handoff); the others find it pending at their next poll.
        direct = notify.accepts_handoff(worker.id)
        row = by_worker.get(worker.id)
        if row is not None:  # revive the lapsed row with a fresh single-use nonce
            row.nonce, row.reject_reason = new_nonce(), None
        else:
            row = Assignment(job_id=job.id, worker_id=worker.id, nonce=new_nonce())
        row.status = AssignmentStatus.running if direct else AssignmentStatus.pending
        row.leased_at, row.lease_expires_at = (now, now + lease) if direct else (None, None)
        session.add(row)
        placed.append((row, direct))
    session.flush()
    for row, direct in placed:
        if direct:
            notify.handoff(session, row.worker_id, {
                "assignment_id": row.id, "nonce": row.nonce,
                "job": {"job_id": job.id, "job_type": job.job_type.value, "payload": job.payload,
                        "request_id": job.request_id}}, still_valid=_still_leased(row))
    notify.defer(session, *(notify.worker_topic(row.worker_id) for row, direct in placed if not direct))
    return {w.id for w in chosen}


def _still_leased(row: Assignment):  # noqa: ANN202
    # Checked when the transaction commits: a ban or drain later in the same transaction releases the
    # row it just handed over, and a released row must not reach the worker.
    nonce = row.nonce
    return lambda: row.status == AssignmentStatus.running and row.nonce == nonce


def give_back(assignment_ids: list[int]) -> None:
    """Hand-offs that found their long-poll gone: back to pending for a worker still online (woken);
    for one that went offline or draining meanwhile, expired and the job placed elsewhere."""
    from backend.core.db import get_engine

    a, w = Assignment.__table__, Worker.__table__  # type: ignore[attr-defined]
    with Session(get_engine()) as session:
        rows = session.execute(select(a.c.id, a.c.job_id, a.c.worker_id, w.c.status)
                               .join(w, w.c.id == a.c.worker_id)
                               .where(a.c.id.in_(assignment_ids), a.c.status == AssignmentStatus.running)).all()
        back = [r.id for r in rows if r.status == WorkerStatus.online]
        gone = [r for r in rows if r.status != WorkerStatus.online]
        if back:
            session.execute(update(a).where(a.c.id.in_(back), a.c.status == AssignmentStatus.running)
                            .values(status=AssignmentStatus.pending, leased_at=None, lease_expires_at=None))
            notify.defer(session, *(notify.worker_topic(r.worker_id) for r in rows if r.id in back))
        if gone:
            session.execute(update(a).where(a.c.id.in_([r.id for r in gone]), a.c.status == AssignmentStatus.running)
                            .values(status=AssignmentStatus.expired,
                                    reject_reason="worker left before the hand-off reached it"))
            for job_id in sorted({r.job_id for r in gone}):
                fill_job(session, job_id)
        session.commit()


notify.returned = give_back


def waiting_jobs(session: Session, limit: int) -> list[Job]:
    """Open jobs with fewer live replicas than they need (no free worker when they were created), oldest first."""
    live = (select(func.count()).select_from(Assignment)
            .where(Assignment.job_id == Job.id, col(Assignment.status).in_(LIVE_STATUSES))
            .correlate(Job).scalar_subquery())
    # SKIP LOCKED (PostgreSQL): a job another transaction holds is being settled or filled there; waiting
    # for it here, inside a transaction that holds other jobs, could deadlock. The next fill finds it.
    return list(session.exec(select(Job).where(col(Job.status).in_(OPEN_JOB_STATUSES), live < Job.replicas_needed)
                             .order_by(col(Job.id)).limit(limit).with_for_update(skip_locked=True, of=Job)).all())


class _Backlog:
    waiting = True
    """False once this process has seen no under-assigned job and placed none short since: the
    submit path then skips the backlog query. Another process's jobs are found by its own submits
    and by every process's sweep, which always looks (fill_backlog with only_if_waiting=False)."""


_backlog = _Backlog()


def _mark_waiting(session: Session) -> None:
    # Now, and again at commit: a concurrent transaction that found no waiting job before this one
    # committed must not leave the hint cleared.
    _backlog.waiting = True
    event.listen(session, "after_commit", lambda _s: setattr(_backlog, "waiting", True), once=True)


def fill_backlog(session: Session, limit: int = 100, *, only_if_waiting: bool = False) -> int:
    """Give under-assigned open jobs (oldest first) to workers with free slots."""
    if only_if_waiting and not _backlog.waiting:
        return 0
    jobs = waiting_jobs(session, limit)
    if not jobs:
        _backlog.waiting = False
        return 0
    candidates = eligible_workers(session)
    if not candidates:
        return 0
    filled = 0
    for job in jobs:
        ids = fill_job(session, job, candidates)
        if ids:
            filled += 1
            candidates = eligible_workers(session)
            if not candidates:
                break
    return filled


def create_job(session: Session, *, job_type: JobType, payload: dict[str, Any], client_user_id: int | None = None,
               api_key_id: int | None = None, request_id: str | None = None, price=0, units: int = 0,
               is_audit: bool = False, is_demo: bool = False, expected_output: dict[str, Any] | None = None) -> Job:
    settings = get_settings()
    replicas = 1 if is_audit else settings.replicas
    candidates = eligible_workers(session)
    if (settings.adaptive_replication and not is_audit and candidates
            and candidates[0][0].reputation >= settings.adaptive_min_reputation
            and random.random() >= settings.adaptive_recheck_rate):
        # A long-trusted worker runs this one alone; audits and the sampled re-checks keep it honest.
        replicas = 1
    job = Job(job_type=job_type, payload=payload, client_user_id=client_user_id, api_key_id=api_key_id,
              request_id=request_id, price=price, units=units, is_audit=is_audit, is_demo=is_demo,
              expected_output=expected_output, replicas_needed=replicas,
              deadline_at=now_utc() + timedelta(seconds=settings.job_deadline_seconds))
    session.add(job)
    session.flush()
    fill_job(session, job, candidates, new=True)
    return job
