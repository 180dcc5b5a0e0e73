"""Liveness (/health: instant, no I/O), readiness (/ready: database, Redis, workers, queue) and /metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool

from backend.coordinator.jobs import notify
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.errors import NotFound
from backend.core.metrics import metrics_response
from backend.core.security import now_utc
from backend.models import Job, JobStatus, Worker, WorkerStatus

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "service": "coordinator"}


def _deep() -> dict[str, Any]:
    out: dict[str, Any] = {"service": "coordinator"}
    try:
        with Session(get_engine()) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            cutoff = now_utc() - timedelta(seconds=get_settings().heartbeat_timeout_seconds)
            out["workers_online"] = session.exec(select(func.count()).select_from(Worker).where(
                Worker.status == WorkerStatus.online, col(Worker.last_seen_at) >= cutoff)).one()
            out["queue_depth"] = session.exec(select(func.count()).select_from(Job).where(
                col(Job.status).in_((JobStatus.queued, JobStatus.disputed)))).one()
        out["database"] = {"ok": True, "backend": get_engine().dialect.name}
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        out["database"] = {"ok": False, "error": type(exc).__name__}
    redis = notify.redis_ok()
    out["redis"] = {"configured": redis is not None, "ok": redis is not False}
    # Too few workers is not "not ready" (workers must still reach this coordinator to come back),
    # but an operator has to see why requests wait: every job needs `replicas` distinct workers.
    out["workers_needed"] = get_settings().replicas
    out["warnings"] = []
    if out.get("workers_online", 0) < out["workers_needed"]:
        out["warnings"].append(f"{out.get('workers_online', 0)} worker(s) online; every job needs "
                               f"{out['workers_needed']}, so new requests wait for workers")
    out["ready"] = out["database"]["ok"] and out["redis"]["ok"]
    out["status"] = "ok" if out["ready"] else "degraded"
    return out


@router.get("/ready")
async def ready() -> JSONResponse:
    out = await run_in_threadpool(_deep)
    return JSONResponse(out, status_code=200 if out["ready"] else 503)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    if not get_settings().enable_prometheus_metrics:
        raise NotFound("Metrics are disabled (ENABLE_PROMETHEUS_METRICS=false)")
    return metrics_response()
