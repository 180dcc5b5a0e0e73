"""Operator API for workers and jobs (admin role; optional IP allowlist)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, status
from sqlmodel import col, func, select

from backend.coordinator.admin import service
from backend.coordinator.deps import AdminUser, SessionDep
from backend.coordinator.jobs.schemas import DemoIn, ReasonIn
from backend.coordinator.workers import service as workers
from backend.coordinator.workers.schemas import ReasonBody, WorkerOut
from backend.core.errors import NotFound
from backend.models import Job, JobStatus, JobType, Role, User, Worker, WorkerStatus

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/workers")
def list_workers(_: AdminUser, session: SessionDep, status_: WorkerStatus | None = Query(None, alias="status"),
                 q: str | None = Query(None, max_length=100)) -> dict[str, Any]:
    stmt = select(Worker).order_by(col(Worker.id))
    if status_:
        stmt = stmt.where(Worker.status == status_)
    if q:
        stmt = stmt.where(col(Worker.name).contains(q))
    rows = list(session.exec(stmt).all())
    owners = {u.id: u.email for u in session.exec(select(User).where(col(User.id).in_({w.owner_user_id for w in rows}))).all()}
    out = []
    for w in workers.list_out(session, rows):
        d = w.model_dump()
        d["owner_email"] = owners.get(w.owner_user_id)
        out.append(d)
    return {"workers": out}


def _worker(session, worker_id: int) -> Worker:
    worker = session.get(Worker, worker_id)
    if worker is None:
        raise NotFound("Worker not found")
    return worker


@router.post("/workers/{worker_id}/drain", response_model=WorkerOut)
def drain_worker(worker_id: int, body: ReasonBody, admin: AdminUser, session: SessionDep) -> WorkerOut:
    worker = workers.drain(session, admin, _worker(session, worker_id), body.reason)
    session.commit()
    return workers.to_out(worker)


@router.post("/workers/{worker_id}/resume", response_model=WorkerOut)
def resume_worker(worker_id: int, body: ReasonBody, admin: AdminUser, session: SessionDep) -> WorkerOut:
    worker = workers.resume(session, admin, _worker(session, worker_id), body.reason)
    session.commit()
    return workers.to_out(worker)


@router.post("/workers/{worker_id}/ban", response_model=WorkerOut)
def ban_worker(worker_id: int, body: ReasonBody, admin: AdminUser, session: SessionDep) -> WorkerOut:
    worker = workers.ban(session, admin, _worker(session, worker_id), body.reason)
    session.commit()
    return workers.to_out(worker)


@router.post("/workers/{worker_id}/unban", response_model=WorkerOut)
def unban_worker(worker_id: int, body: ReasonBody, admin: AdminUser, session: SessionDep) -> WorkerOut:
    worker = workers.unban(session, admin, _worker(session, worker_id), body.reason)
    session.commit()
    return workers.to_out(worker)


@router.get("/jobs")
def list_jobs(_: AdminUser, session: SessionDep,
              status_: JobStatus | None = Query(None, alias="status"), job_type: JobType | None = None,
              client_id: int | None = None, worker_id: int | None = None, is_audit: bool | None = None,
              since: datetime | None = None, until: datetime | None = None,
              limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    return service.list_jobs(session, status=status_, job_type=job_type, client_id=client_id,
                             worker_id=worker_id, is_audit=is_audit, since=since, until=until,
                             limit=limit, offset=offset)


@router.get("/jobs/{job_id}")
def job_detail(job_id: int, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return service.job_detail(session, job_id)


@router.post("/jobs/enqueue-demo", status_code=status.HTTP_201_CREATED)
def enqueue_demo(admin: AdminUser, session: SessionDep, body: DemoIn | None = None) -> dict[str, Any]:
    body = body or DemoIn()
    ids = service.enqueue_demo(session, admin, body.count, body.job_type)
    session.commit()
    return {"job_ids": ids, "count": len(ids)}


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: int, body: ReasonIn, admin: AdminUser, session: SessionDep) -> dict[str, Any]:
    out = service.cancel(session, admin, job_id, body.reason)
    session.commit()
    return out


@router.post("/jobs/{job_id}/requeue")
def requeue_job(job_id: int, body: ReasonIn, admin: AdminUser, session: SessionDep) -> dict[str, Any]:
    out = service.requeue(session, admin, job_id, body.reason)
    session.commit()
    return out


@router.get("/users")
def list_users(_: AdminUser, session: SessionDep, role: Role | None = None,
               limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    stmt = select(User)
    count = select(func.count()).select_from(User)
    if role:
        stmt, count = stmt.where(User.role == role), count.where(User.role == role)
    rows = session.exec(stmt.order_by(col(User.id)).limit(limit).offset(offset)).all()
    return {"items": [{"id": u.id, "email": u.email, "role": u.role.value, "is_active": u.is_active,
                       "created_at": u.created_at} for u in rows],
            "total": session.exec(count).one(), "limit": limit, "offset": offset}
