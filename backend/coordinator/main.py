"""The coordinator app: lifespan (schema, admin, scheduler), middleware, routers, /health, /metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from backend.coordinator import health
from backend.coordinator.admin.routes import router as admin_router
from backend.coordinator.auth.routes import router as auth_router
from backend.coordinator.emission.routes import router as emission_router
from backend.coordinator.jobs.internal import router as internal_router
from backend.coordinator.jobs.routes import router as jobs_router
from backend.coordinator.ledger.routes import router as ledger_router
from backend.coordinator.me.routes import router as me_router
from backend.coordinator.workers.routes import router as workers_router
from backend.core.config import get_settings
from backend.core.http import install_common

log = logging.getLogger("openmesh.coordinator")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from backend.coordinator import bootstrap, scheduler
    from backend.coordinator.jobs import notify

    bootstrap.prepare_database()
    await notify.start()
    sched = scheduler.start() if get_settings().scheduler_enabled else None
    log.info("coordinator ready")
    try:
        yield
    finally:
        if sched is not None:
            sched.shutdown(wait=False)
        await notify.stop()


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPIOffline(title="OpenMesh Pool — Coordinator", version="0.1.0", lifespan=lifespan)
    install_common(app, service="coordinator", settings=settings)
    for router in (auth_router, me_router, workers_router, jobs_router, ledger_router, emission_router,
                   admin_router, internal_router, health.router):
        app.include_router(router)
    return app


app = create_app()
