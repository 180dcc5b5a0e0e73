"""The gateway's one HTTP client to the coordinator's internal API (docs/architecture.md).

One `httpx.AsyncClient` per app, created in the lifespan and closed with it. Every call carries
`X-Internal-Token` (settings.coordinator_internal_token) and the request's `X-Request-ID`. Job calls are
held open by the coordinator until the job is verified, so their read timeout is `wait_seconds` plus a
margin. Coordinator answers are mapped through with their status and detail unchanged (401 Invalid API
key, 402 Insufficient balance, 422, 503 Verification timeout, 502 Job failed: ...). A coordinator that
cannot be reached, that does not answer in time, or that refuses the gateway's own token is a 503
`Coordinator unavailable` (the last one is logged: it is a configuration fault, not the client's).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson

from backend.core.config import Settings
from backend.core.errors import DomainError, ServiceUnavailable
from backend.core.jsonresp import dumps
from backend.core.logging import request_id_var

log = logging.getLogger("openmesh.gateway.coordinator")

COORDINATOR_UNAVAILABLE = "Coordinator unavailable"
WAIT_MARGIN_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0
HEALTH_TIMEOUT_SECONDS = 2.0


class CoordinatorClient:
    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.coordinator_url,
            transport=transport,
            headers={"X-Internal-Token": settings.coordinator_internal_token},
            timeout=httpx.Timeout(connect=CONNECT_TIMEOUT_SECONDS,
                                  read=settings.poll_timeout_seconds + WAIT_MARGIN_SECONDS,
                                  write=10.0, pool=10.0),
            # Job calls are held open until verification: allow many at once.
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- calls -------------------------------------------------------------------------------------
    async def create_job(self, *, api_key: str, job_type: str, payload: dict[str, Any],
                         wait_seconds: float | None = None) -> dict[str, Any]:
        """`POST /internal/jobs` → the verified job `{job_id, status, output, verification, usage, price}`."""
        wait = self.settings.poll_timeout_seconds if wait_seconds is None else wait_seconds
        body = {"api_key": api_key, "job_type": job_type, "payload": payload, "wait_seconds": wait}
        return await self._post("/internal/jobs", body, wait)

    async def create_batch(self, *, api_key: str, job_type: str, payloads: list[dict[str, Any]],
                           wait_seconds: float | None = None) -> dict[str, Any]:
        """`POST /internal/jobs/batch` → `{"results": [<job>...]}` in the payloads' order."""
        wait = self.settings.poll_timeout_seconds if wait_seconds is None else wait_seconds
        body = {"api_key": api_key, "job_type": job_type, "payloads": payloads, "wait_seconds": wait}
        return await self._post("/internal/jobs/batch", body, wait)

    async def receipt(self, *, api_key: str, job_id: int | str) -> dict[str, Any]:
        """`POST /internal/jobs/{job_id}/receipt` → the job record (404 if not the key owner's)."""
        return await self._post(f"/internal/jobs/{job_id}/receipt", {"api_key": api_key}, 0.0)

    async def health(self) -> bool:
        """True when the coordinator's `GET /health` answers 200 quickly."""
        try:
            resp = await self._client.get("/health", timeout=HEALTH_TIMEOUT_SECONDS,
                                          headers=self._headers())
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    # -- plumbing ----------------------------------------------------------------------------------
    @staticmethod
    def _headers() -> dict[str, str]:
        rid = request_id_var.get()
        return {"X-Request-ID": rid} if rid else {}

    async def _post(self, path: str, body: dict[str, Any], wait: float) -> dict[str, Any]:
        timeout = httpx.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=wait + WAIT_MARGIN_SECONDS,
                                write=10.0, pool=10.0)
        try:
            resp = await self._client.post(path, content=dumps(body),
                                           headers={"Content-Type": "application/json", **self._headers()},
                                           timeout=timeout)
        except httpx.TimeoutException as exc:
            log.error("coordinator did not answer %s in time (%s)", path, type(exc).__name__)
            raise ServiceUnavailable(COORDINATOR_UNAVAILABLE) from None
        except httpx.HTTPError as exc:
            log.error("coordinator unreachable for %s (%s)", path, type(exc).__name__)
            raise ServiceUnavailable(COORDINATOR_UNAVAILABLE) from None
        return self._result(path, resp)

    @staticmethod
    def _result(path: str, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = orjson.loads(resp.content)
        except ValueError:  # orjson.JSONDecodeError is a ValueError
            data = None
        if resp.is_success:
            if not isinstance(data, dict):
                log.error("coordinator sent a non-JSON answer to %s (status %s)", path, resp.status_code)
                raise DomainError("Bad answer from the coordinator", status_code=502)
            return data
        detail = data.get("detail") if isinstance(data, dict) else None
        status = resp.status_code
        if status in (401, 403) and detail != "Invalid API key":
            # The coordinator refused the gateway itself (internal token, IP allowlist): not the client's fault.
            log.error("coordinator refused the gateway on %s: %s %s", path, status, detail)
            raise ServiceUnavailable(COORDINATOR_UNAVAILABLE)
        if status >= 500 and status not in (502, 503, 504):
            log.error("coordinator error on %s: %s %s", path, status, detail)
            raise DomainError(detail if isinstance(detail, str) else "Coordinator error", status_code=502)
        headers = {"Retry-After": resp.headers["retry-after"]} if "retry-after" in resp.headers else None
        extra = {k: v for k, v in data.items() if k != "detail"} if isinstance(data, dict) else {}
        raise DomainError(detail if detail is not None else resp.reason_phrase, status_code=status,
                          headers=headers, extra=extra)
