"""The gateway's internal API: admit a client job and hold the request until it is verified.

Every route needs X-Internal-Token. The wait is event-driven (notify): the answer leaves the moment
the verifying submission commits, in this process or (through Redis) another one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.coordinator.auth.service import resolve_api_key
from backend.coordinator.deps import InternalCaller
from backend.coordinator.jobs import notify, service
from backend.coordinator.jobs.schemas import ApiKeyIn, InternalBatchIn, InternalJobIn
from backend.core.db import get_engine, read_only
from backend.core.errors import NotFound, Unauthorized
from backend.core.jsonresp import FastJSONResponse
from backend.core.logging import request_id_var
from backend.models import Job, JobStatus

router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[InternalCaller])


def _session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def _key(session: Session, raw: str):
    key = resolve_api_key(session, raw)
    if key is None:
        raise Unauthorized("Invalid API key")
    return key


def _admit(body: InternalJobIn | InternalBatchIn, request_id: str | None) -> list[tuple[int, notify.Waiter]]:
    """Create the jobs and subscribe to their answers before the commit that lets workers start."""
    with _session() as session:
        key = _key(session, body.api_key)
        if isinstance(body, InternalBatchIn):
            jobs = service.admit_batch(session, key, body.job_type, body.payloads, request_id)
        else:
            jobs = [service.admit(session, key, body.job_type, body.payload, request_id)]
        waits = [(j.id, notify.subscribe(notify.job_topic(j.id))) for j in jobs]
        try:
            session.commit()
        except BaseException:
            _unsubscribe(waits)
            raise
        return waits  # type: ignore[return-value]


def _unsubscribe(waits: list[tuple[int, notify.Waiter]]) -> None:
    for job_id, ev in waits:
        notify.unsubscribe(notify.job_topic(job_id), ev)


def _view(job_id: int) -> dict[str, Any] | None:
    with _session() as session:
        job = read_only(session).get(Job, job_id)
        if job is None or not service.is_terminal(job):
            return None
        return service.result_view(session, job)


def _cancel(job_id: int) -> None:
    with _session() as session:
        if service.cancel_if_open(session, job_id, "verification timeout"):
            session.commit()


async def _wait_for(job_id: int, ev: notify.Waiter, deadline: float) -> dict[str, Any]:
    """The job's view once final; `ev` was subscribed before the job was committed."""
    view = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            await run_in_threadpool(_cancel, job_id)
            # The job may have been verified in the same instant; the database decides.
            return await run_in_threadpool(_view, job_id) or {"job_id": job_id, "status": "cancelled"}
        # The event is the fast path; the 5 s cap re-checks in case a hint was lost.
        await notify.wait(ev, min(remaining, 5.0))
        # A verdict of this process carries the committed view; anything else is read back.
        view, ev.payload = ev.payload, None
        if view is None:
            view = await run_in_threadpool(_view, job_id)
        if view is not None:
            return view


async def _wait_all(waits: list[tuple[int, notify.Waiter]], wait_seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait_seconds
    try:
        return list(await asyncio.gather(*(_wait_for(j, ev, deadline) for j, ev in waits)))
    finally:
        _unsubscribe(waits)


def _response(view: dict[str, Any], **extra: Any) -> Any:
    if view["status"] == JobStatus.verified and not extra:
        return FastJSONResponse(view)
    if view["status"] == JobStatus.cancelled:
        detail, code = "Verification timeout", 503
    elif view["status"] == JobStatus.verified:
        detail, code = "OK", 200
    else:
        detail, code = f"Job failed: {view.get('error') or 'no verified result'}", 502
    return JSONResponse(jsonable_encoder({"detail": detail, "job_id": view["job_id"], **extra}), status_code=code)


@router.post("/jobs")
async def create_job(body: InternalJobIn, request: Request) -> Any:
    waits = await run_in_threadpool(_admit, body, request_id_var.get() or None)
    (view,) = await _wait_all(waits, body.wait_seconds)
    return _response(view)


@router.post("/jobs/batch")
async def create_batch(body: InternalBatchIn) -> Any:
    waits = await run_in_threadpool(_admit, body, request_id_var.get() or None)
    views = await _wait_all(waits, body.wait_seconds)
    bad = next((v for v in views if v["status"] != JobStatus.verified), None)
    if bad is not None:
        # One item without a verified answer fails the request; its verified siblings stay charged
        # (their work was done and checked) and are listed so nothing is lost.
        return _response(bad, results=views)
    return FastJSONResponse({"results": views})


@router.post("/jobs/{job_id}/receipt")
def receipt(job_id: int, body: ApiKeyIn) -> dict[str, Any]:
    with _session() as session:
        key = _key(session, body.api_key)
        job = session.get(Job, job_id)
        if job is None or job.client_user_id != key.user_id:
            raise NotFound("Job not found")
        return service.result_view(session, job)


@router.post("/api-keys/check")
def check_key(body: ApiKeyIn) -> dict[str, int]:
    with _session() as session:
        key = _key(session, body.api_key)
        session.commit()
        return {"user_id": key.user_id, "api_key_id": key.id}
