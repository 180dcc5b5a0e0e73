"""What both FastAPI apps share: request ids, body limits, request metrics, CORS and error rendering."""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.config import Settings
from backend.core.errors import install_handlers
from backend.core.logging import request_id_var
from backend.core.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("openmesh.http")
REQUEST_ID_HEADER = "x-request-id"


# Generated ids only need to be unique, not unpredictable: a random per-process prefix and a counter
# (a uuid4 per request, one getrandom() system call each, was a tenth of a heartbeat's CPU).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)

# Worker routes called many times a second per worker: logged when they fail, not on every success
# (their counts and latencies are in the Prometheus histograms either way).
QUIET_PATHS = frozenset({"/workers/heartbeat", "/jobs/poll", "/jobs/poll-batch", "/jobs/submit",
                         "/jobs/submit-batch", "/health", "/metrics"})


def _clean_request_id(raw: str | None) -> str:
    # A client-supplied id is echoed into logs and headers: keep it short and printable.
    if raw and len(raw) <= 128 and raw.isascii() and raw.isprintable():
        return raw
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException so that FastAPI's body reader re-raises it (any other exception there becomes
    # "400 There was an error parsing the body") and the app's handlers render it as a JSON 413.
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"Request body too large (limit {limit} bytes)")


class RequestContextMiddleware:
    """Request id in and out, a streaming body-size cap (413 without reading it all), and metrics."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = _clean_request_id(headers.get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status_holder = {"status": 500}
        limit = self.max_body_bytes

        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, rid, limit)
            self._observe(scope, 413, start)
            request_id_var.reset(token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if not response_started:
                await self._too_large(send, rid, limit)
            status_holder["status"] = 413
        finally:
            self._observe(scope, status_holder["status"], start)
            request_id_var.reset(token)

    async def _too_large(self, send: Send, rid: str, limit: int) -> None:
        body = json.dumps({"detail": f"Request body too large (limit {limit} bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    def _observe(self, scope: Scope, status: int, start: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        elapsed = time.perf_counter() - start
        HTTP_REQUESTS.labels(self.service, path, method, str(status)).inc()
        HTTP_LATENCY.labels(self.service, path, method).observe(elapsed)
        if path not in QUIET_PATHS or status >= 400:
            log.info("request", extra={"path": path, "method": method, "status": status,
                                       "duration_ms": round(elapsed * 1000, 2), "service": self.service})


def _validation_payload(exc: RequestValidationError) -> tuple[int, dict[str, Any]]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return 400, {"detail": "Request body is not valid JSON (or not valid UTF-8)"}
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        field = ""
        for part in loc:
            field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
        errors.append({"loc": list(err.get("loc", ())), "field": field, "msg": err.get("msg", "invalid"), "type": err.get("type")})
    return 422, {"detail": errors}


def _document_error_shapes(app: FastAPI) -> None:
    """Make the OpenAPI schema describe the 422 bodies the app really sends.

    FastAPI documents 422 as `{"detail": [ValidationError...]}`, but a domain rule checked in a service
    (backend.core.errors, e.g. "amount must be greater than 0") answers 422 with a string detail, and
    the validation handler above adds `field` to each item. Clients (and schemathesis) read the schema.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in components:
            components["HTTPValidationError"].setdefault("properties", {})["detail"] = {
                "title": "Detail",
                "description": "A list of field errors (request validation) or one message (a service rule).",
                "anyOf": [{"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                          {"type": "string"}],
            }
        if "ValidationError" in components:
            components["ValidationError"].setdefault("properties", {})["field"] = {
                "title": "Field", "type": "string", "description": "Dotted path of the field (`texts[3]`)"}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_common(app: FastAPI, *, service: str, settings: Settings) -> None:
    """Middleware and error handlers both services use."""
    install_handlers(app)
    _document_error_shapes(app)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, payload = _validation_payload(exc)
        return JSONResponse(payload, status_code=status)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                            "X-RateLimit-Reset"],
        )
    app.add_middleware(RequestContextMiddleware, service=service, max_body_bytes=settings.max_body_bytes)
