"""The gateway app: the public inference API (native, OpenAI- and Cohere-compatible routes).

`create_app(coordinator_transport=..., limiter=...)` lets tests run the gateway against a fake
coordinator (any httpx transport) and give each app instance its own limiter object (two instances on
one Redis behave like two gateway processes).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.config import get_settings
from backend.core.errors import NotFound
from backend.core.http import install_common
from backend.core.metrics import metrics_response
from backend.core.ratelimit import RateLimiter, get_limiter
from backend.gateway import cohere_routes, openai_routes, routes
from backend.gateway.auth import STATE_HEADERS
from backend.gateway.coordinator_client import CoordinatorClient

log = logging.getLogger("openmesh.gateway")

DESCRIPTION = """Public inference API of the OpenMesh Pool.

Authenticate with `X-API-Key: <key>` (or `Authorization: Bearer <key>`). Every answer is verified by
two independent workers before it is returned. Limits (also at `GET /v1/limits`): body ≤ MAX_BODY_BYTES
(413 above), text ≤ 20,000 characters, rank ≤ 32 texts of ≤ 10,000 characters, ≤ 256 inputs per
`/v1/embeddings` call (422 above); per-IP and per-key sliding-window rate limits (429 with Retry-After).
"""


class RateLimitHeadersMiddleware:
    """Copies the request's X-RateLimit-* values (set by the limit dependencies) onto its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = (scope.get("state") or {}).get(STATE_HEADERS)
                if extra:
                    headers = list(message.get("headers", []))
                    present = {k.lower() for k, _ in headers}
                    for name, value in extra.items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    app.state.coordinator = CoordinatorClient(settings, transport=app.state.coordinator_transport)
    log.info("gateway ready (coordinator %s, rate limits on %s)", settings.coordinator_url,
             app.state.limiter.backend)
    try:
        yield
    finally:
        client, app.state.coordinator = app.state.coordinator, None
        if client is not None:
            await client.aclose()


def create_app(*, coordinator_transport: httpx.AsyncBaseTransport | None = None,
               limiter: RateLimiter | None = None) -> FastAPI:
    settings = get_settings()
    app = FastAPIOffline(title="OpenMesh Pool — Gateway", version="0.1.0", description=DESCRIPTION,
                         lifespan=lifespan)
    app.state.coordinator_transport = coordinator_transport
    app.state.coordinator = None
    app.state.limiter = limiter or get_limiter()
    app.add_middleware(RateLimitHeadersMiddleware)
    install_common(app, service="gateway", settings=settings)
    app.include_router(routes.router)
    app.include_router(openai_routes.router)
    app.include_router(cohere_routes.router)

    @app.get("/health", tags=["ops"], summary="Liveness (fast, no dependencies checked)")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "service": "gateway", "rate_limit": app.state.limiter.status()["status"]}

    @app.get("/ready", tags=["ops"], summary="Readiness: coordinator reachable, rate-limit backend status",
             responses={503: {"description": "Not ready (coordinator unreachable)"}})
    async def ready(request: Request) -> JSONResponse:
        coordinator = routes.get_coordinator(request)
        coordinator_ok = await coordinator.health()
        limiter: RateLimiter = app.state.limiter
        if limiter.backend == "redis":
            await anyio.to_thread.run_sync(limiter.check)
        rl = limiter.status()
        if not coordinator_ok:
            status = "not_ready"
        elif rl["status"] != "ok":
            status = "degraded"  # still serving: limits fall back to this process
        else:
            status = "ready"
        body = {"status": status, "service": "gateway",
                "coordinator": "ok" if coordinator_ok else "unreachable", "rate_limit": rl}
        return JSONResponse(body, status_code=200 if coordinator_ok else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics",
             responses={404: {"description": "ENABLE_PROMETHEUS_METRICS=false"}})
    async def metrics() -> Response:
        if not get_settings().enable_prometheus_metrics:
            raise NotFound("Not found")
        return metrics_response()

    return app


app = create_app()
