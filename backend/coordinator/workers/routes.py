"""Worker owners' API: register machines, list them, heartbeat, drain, see rejections."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from backend.coordinator.deps import CurrentUser, SessionDep, TokenUserId, WorkerOwner
from backend.coordinator.workers import service
from backend.coordinator.workers.schemas import HeartbeatOut, ReasonBody, WorkerOut, WorkerRef, WorkerRegister
from backend.core.db import get_engine, read_only
from backend.models import Worker

router = APIRouter(tags=["workers"])


@router.post("/workers/register", status_code=status.HTTP_201_CREATED, response_model=WorkerOut)
def register_worker(body: WorkerRegister, user: WorkerOwner, session: SessionDep) -> WorkerOut:
    worker = service.register(session, user, body)
    session.commit()
    return service.to_out(worker)


@router.get("/workers")
def list_my_workers(user: CurrentUser, session: SessionDep) -> dict[str, list[WorkerOut]]:
    workers = session.exec(select(Worker).where(Worker.owner_user_id == user.id).order_by(col(Worker.id))).all()
    return {"workers": service.list_out(session, list(workers))}


def _heartbeat(user_id: int, worker_id: int) -> HeartbeatOut:
    # The hot path: one query to check the caller, and a write only when liveness is due one.
    with Session(get_engine(), expire_on_commit=False) as session:
        worker = service.worker_for_work(read_only(session), user_id, worker_id)
        session.commit()
        if service.needs_touch(worker):
            worker = service.worker_for_work(session, user_id, worker_id)  # fresh, in the write transaction
            service.touch(session, worker)
            session.commit()
        return HeartbeatOut(worker_id=worker.id, last_seen_at=worker.last_seen_at, status=worker.status.value)


@router.post("/workers/heartbeat", response_model=HeartbeatOut)
async def heartbeat(body: WorkerRef, user_id: TokenUserId) -> HeartbeatOut:
    return await run_in_threadpool(_heartbeat, user_id, body.worker_id)


@router.post("/workers/{worker_id}/drain", response_model=WorkerOut)
def drain_my_worker(worker_id: int, user: CurrentUser, session: SessionDep,
                    body: ReasonBody | None = None) -> WorkerOut:
    worker = service.owned_worker(session, user, worker_id)
    service.drain(session, user, worker, (body.reason if body else "") or "drained by its owner")
    session.commit()
    return service.to_out(worker)


@router.post("/workers/{worker_id}/resume", response_model=WorkerOut)
def resume_my_worker(worker_id: int, user: CurrentUser, session: SessionDep,
                    body: ReasonBody | None = None) -> WorkerOut:
    worker = service.owned_worker(session, user, worker_id)
    service.resume(session, user, worker, (body.reason if body else "") or "resumed by its owner")
    session.commit()
    return service.to_out(worker)


@router.get("/workers/{worker_id}/rejections")
def worker_rejections(worker_id: int, user: CurrentUser, session: SessionDep) -> dict:
    worker = service.owned_worker(session, user, worker_id)
    rows = service.rejections(session, worker)
    return {"worker_id": worker.id, "status": worker.status.value, "banned_reason": worker.banned_reason,
            "items": [{"assignment_id": a.id, "job_id": a.job_id, "reason": a.reject_reason,
                       "similarity": a.similarity, "submitted_at": a.submitted_at} for a in rows]}
