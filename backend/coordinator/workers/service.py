"""Worker registration, ownership, heartbeats (with uptime minutes), drain, ban and unban."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import event, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.coordinator.jobs import notify
from backend.core.config import get_settings
from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.security import now_utc
from backend.models import (
    OPEN_ASSIGNMENT_STATUSES,
    AdminAction,
    Assignment,
    AssignmentStatus,
    Role,
    User,
    Worker,
    WorkerStatus,
    WorkerUptime,
)
from backend.coordinator.workers.schemas import WorkerOut, WorkerRegister


def register(session: Session, owner: User, body: WorkerRegister) -> Worker:
    specs = body.specs_json
    worker = Worker(
        name=body.name, owner_user_id=owner.id, region=body.region, public_key=body.public_key,
        specs_json=specs,
        # A self-declared reputation is only a hint that can lower the start, never raise it: trust is
        # earned by verified results, or throwaway owner accounts could win both replicas of a job.
        reputation=min(float(specs.get("reputation", get_settings().initial_reputation)),
                       get_settings().initial_reputation),
        estimated_latency_ms=float(specs.get("estimated_latency_ms", 1000.0)),
        max_concurrency=int(specs.get("max_concurrency", 1)),
    )
    session.add(worker)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("Worker name already registered") from None
    return worker


def owned_worker(session: Session, user: User, worker_id: int) -> Worker:
    """The caller's worker; anyone else's (or a missing one) is 404 `Worker not found`."""
    worker = session.get(Worker, worker_id)
    if worker is None or (worker.owner_user_id != user.id and user.role != Role.admin):
        raise NotFound("Worker not found")
    return worker


def owned_worker_for_work(session: Session, user: User, worker_id: int) -> Worker:
    """Heartbeat, poll and submit: only the owner's own credentials drive a worker."""
    worker = session.get(Worker, worker_id)
    if worker is None or worker.owner_user_id != user.id:
        raise NotFound("Worker not found")
    return worker


def worker_for_work(session: Session, user_id: int, worker_id: int) -> Worker:
    """The token user's own worker for heartbeat, poll and submit, in one query on the hot path.

    401 when the user is gone or inactive, 404 when the worker is missing or someone else's (the same
    answers, in the same order, as active_user followed by owned_worker_for_work).
    """
    row = session.exec(select(Worker, User.is_active).join(User, col(User.id) == col(Worker.owner_user_id))
                       .where(col(Worker.id) == worker_id, col(Worker.owner_user_id) == user_id)).first()
    if row is not None and row[1]:
        return row[0]
    from backend.coordinator.deps import active_user

    return owned_worker_for_work(session, active_user(session, user_id), worker_id)


def needs_touch(worker: Worker, now: datetime | None = None) -> bool:
    """False while an online worker's last recorded contact is fresher than HEARTBEAT_WRITE_INTERVAL."""
    if worker.status != WorkerStatus.online or worker.last_seen_at is None:
        return True
    settings = get_settings()
    # Never coarser than a quarter of the timeout, or a live worker could be declared offline.
    interval = min(settings.heartbeat_write_interval_seconds, settings.heartbeat_timeout_seconds / 4)
    return ((now or now_utc()) - worker.last_seen_at).total_seconds() >= interval


def touch(session: Session, worker: Worker, now: datetime | None = None) -> None:
    """Record liveness: last_seen_at, offline → online, and this minute in the uptime history."""
    now = now or now_utc()
    came_online = worker.status == WorkerStatus.offline
    if needs_touch(worker, now):
        worker.last_seen_at = now
        if came_online:
            worker.status = WorkerStatus.online
        session.add(worker)
    minute = now.replace(second=0, microsecond=0)
    # One uptime row per worker and minute: after the first heartbeat of a minute has committed,
    # the rest of that minute's heartbeats skip the (idempotent) insert. The key includes the
    # worker's creation time, so a recreated row with a reused id is never mistaken for this one.
    seen_key = (worker.id, worker.created_at)
    if _uptime_recorded.get(seen_key) != minute:
        _insert_uptime_minute(session, worker.id, minute)
        event.listen(session, "after_commit", lambda _s: _uptime_recorded.__setitem__(seen_key, minute), once=True)
    if came_online:
        # A worker coming online may take queued jobs that found nobody at creation.
        from backend.coordinator.jobs import scheduling

        scheduling.fill_backlog(session, limit=50)


_uptime_recorded: dict[tuple[int | None, datetime], datetime] = {}
"""(worker id, created_at) → the last minute whose uptime row this process saw committed."""


def _insert_uptime_minute(session: Session, worker_id: int, minute: datetime) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(WorkerUptime).values(worker_id=worker_id, minute=minute).on_conflict_do_nothing()
    session.exec(stmt)  # type: ignore[call-overload]


def active_counts(session: Session, worker_ids: list[int] | None = None) -> dict[int, int]:
    stmt = (select(Assignment.worker_id, func.count()).where(col(Assignment.status).in_(OPEN_ASSIGNMENT_STATUSES))
            .group_by(Assignment.worker_id))
    if worker_ids is not None:
        stmt = stmt.where(col(Assignment.worker_id).in_(worker_ids))
    return {wid: n for wid, n in session.exec(stmt).all()}


def to_out(worker: Worker, active: int = 0, now: datetime | None = None) -> WorkerOut:
    out = WorkerOut.model_validate(worker)
    out.active_assignments = active
    if worker.last_seen_at is not None:
        out.heartbeat_age_seconds = round(((now or now_utc()) - worker.last_seen_at).total_seconds(), 3)
    return out


def list_out(session: Session, workers: list[Worker]) -> list[WorkerOut]:
    counts = active_counts(session, [w.id for w in workers])
    now = now_utc()
    return [to_out(w, counts.get(w.id, 0), now) for w in workers]


def release_open_assignments(session: Session, worker: Worker, reason: str,
                             include_running: bool = False) -> set[int]:
    """Give a worker's not-yet-started (or, when banned, all unfinished) work to others; returns job ids.

    A banned worker's submitted results still waiting for a peer are discarded too: a cheater's
    earlier answers must neither decide a job nor earn a reward.
    """
    statuses = (*OPEN_ASSIGNMENT_STATUSES, AssignmentStatus.submitted) if include_running \
        else (AssignmentStatus.pending,)
    rows = session.exec(select(Assignment).where(
        Assignment.worker_id == worker.id, col(Assignment.status).in_(statuses))).all()
    for a in rows:
        a.status = AssignmentStatus.expired if a.status != AssignmentStatus.submitted else AssignmentStatus.cancelled
        a.reject_reason = reason
        session.add(a)
    return {a.job_id for a in rows}


def _record(session: Session, actor: User, action: str, worker: Worker, reason: str) -> None:
    session.add(AdminAction(actor_user_id=actor.id, action=action, target_type="worker",
                            target_id=worker.id, reason=reason))


def drain(session: Session, actor: User, worker: Worker, reason: str) -> Worker:
    if worker.status == WorkerStatus.banned:
        raise Conflict("Worker is banned")
    worker.status = WorkerStatus.draining
    session.add(worker)
    jobs = release_open_assignments(session, worker, "worker draining")
    _record(session, actor, "drain", worker, reason)
    _refill(session, jobs)
    return worker


def ban(session: Session, actor: User | None, worker: Worker, reason: str) -> Worker:
    worker.status = WorkerStatus.banned
    worker.banned_reason = reason or "banned by an administrator"
    session.add(worker)
    jobs = release_open_assignments(session, worker, "worker banned", include_running=True)
    if actor is not None:
        _record(session, actor, "ban", worker, reason)
    _refill(session, jobs)
    return worker


def resume(session: Session, actor: User, worker: Worker, reason: str) -> Worker:
    """End a drain: the worker takes new work again from its next heartbeat."""
    if worker.status != WorkerStatus.draining:
        raise Conflict(f"Worker is {worker.status.value}, not draining")
    worker.status = WorkerStatus.offline
    session.add(worker)
    _record(session, actor, "resume", worker, reason)
    return worker


def unban(session: Session, actor: User, worker: Worker, reason: str) -> Worker:
    if worker.status not in (WorkerStatus.banned, WorkerStatus.draining):
        raise Conflict(f"Worker is {worker.status.value}, not banned or draining")
    worker.status = WorkerStatus.offline  # back online at its next heartbeat
    worker.banned_reason = None
    # A fresh start: the rejections stay in the history, but the count towards a ban restarts.
    worker.rejected_count = 0
    session.add(worker)
    _record(session, actor, "unban", worker, reason)
    return worker


def _refill(session: Session, job_ids: set[int]) -> None:
    from backend.coordinator.jobs import scheduling

    for job_id in sorted(job_ids):
        scheduling.fill_job(session, job_id)


def mark_stale_offline(session: Session, now: datetime | None = None) -> list[int]:
    """Workers silent past the heartbeat timeout go offline; their unstarted work moves on."""
    now = now or now_utc()
    cutoff = now - timedelta(seconds=get_settings().heartbeat_timeout_seconds)
    stale = session.exec(select(Worker).where(
        Worker.status == WorkerStatus.online,
        (col(Worker.last_seen_at).is_(None)) | (col(Worker.last_seen_at) < cutoff))).all()
    jobs: set[int] = set()
    for w in stale:
        res = session.exec(update(Worker).where(col(Worker.id) == w.id, col(Worker.status) == WorkerStatus.online)
                           .values(status=WorkerStatus.offline))  # type: ignore[call-overload]
        if res.rowcount:
            jobs |= release_open_assignments(session, w, "worker went offline")
    _refill(session, jobs)
    return [w.id for w in stale]


def rejections(session: Session, worker: Worker, limit: int = 50) -> list[Assignment]:
    return list(session.exec(select(Assignment).where(
        Assignment.worker_id == worker.id, Assignment.status == AssignmentStatus.rejected)
        .order_by(col(Assignment.id).desc()).limit(limit)).all())


def require_can_work(worker: Worker) -> None:
    if worker.status == WorkerStatus.banned:
        raise Forbidden(f"Worker is banned: {worker.banned_reason or 'no reason given'}")


def wake_after_commit(session: Session, worker_ids: set[int] | list[int]) -> None:
    notify.defer(session, *(notify.worker_topic(w) for w in worker_ids))
