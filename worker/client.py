"""HTTP client of the coordinator's worker API: login/refresh, register, heartbeat, poll, submit.

Thread-safe: the heartbeat thread and the run loop share one client; a lock guards token refresh.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from worker import __version__

log = logging.getLogger("openmesh.worker.client")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
POLL_READ_MARGIN = 15.0
"""A long-poll's read timeout is wait_seconds plus this margin: the coordinator's empty answer comes first."""

NO_ASSIGNMENT = "No assignment available"


class CoordinatorError(Exception):
    """The coordinator answered with an error status."""

    def __init__(self, status_code: int, detail: Any, *, path: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        self.path = path
        super().__init__(f"{path}: {status_code} {detail}" if path else f"{status_code} {detail}")


class AuthError(CoordinatorError):
    """Login or refresh failed (401/403): bad credentials or a revoked account."""


class NotFoundError(CoordinatorError):
    """404 other than "No assignment available" (e.g. `Worker not found`)."""


class ConflictError(CoordinatorError):
    """409: duplicate name, or an assignment already submitted / not submittable."""


class CoordinatorUnavailable(Exception):
    """Transport failure or a 5xx: the caller should back off and retry."""


@dataclass(frozen=True)
class Job:
    job_id: Any
    job_type: str
    payload: dict[str, Any]
    request_id: str | None = None


@dataclass(frozen=True)
class Assignment:
    assignment_id: int
    nonce: str
    job: Job
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Assignment:
        job = item.get("job") or {}
        payload = job.get("payload")
        return cls(
            assignment_id=int(item["assignment_id"]),
            nonce=str(item["nonce"]),
            job=Job(
                job_id=job.get("job_id"),
                job_type=str(job.get("job_type", "")),
                payload=payload if isinstance(payload, dict) else {},
                request_id=job.get("request_id"),
            ),
            raw=item,
        )


def _json_body(body: Any) -> dict[str, Any]:
    # Results carry 384 floats: orjson encodes them several times faster than json, with the same
    # shortest round-trip text for each float (the coordinator re-hashes the parsed values, not these bytes).
    return {"content": orjson.dumps(body), "headers": {"Content-Type": "application/json"}}


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


class CoordinatorClient:
    """Synchronous coordinator client for one worker-owner account."""

    def __init__(
        self,
        base_url: str,
        *,
        email: str | None = None,
        password: str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = READ_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._email = email
        self._password = password
        self._access = access_token
        self._refresh = refresh_token
        self._lock = threading.Lock()
        self._poll_batch_supported = True
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            headers={"User-Agent": f"openmesh-worker/{__version__}"},
        )

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CoordinatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth ------------------------------------------------------------------------------
    def login(self) -> None:
        """POST /auth/login with the account's email and password; keeps the token pair."""
        if not self._email or not self._password:
            raise AuthError(401, "email and password are required to log in", path="/auth/login")
        response = self._send("POST", "/auth/login", json={"email": self._email, "password": self._password})
        if response.status_code != 200:
            raise AuthError(response.status_code, _detail(response), path="/auth/login")
        self._store_tokens(response.json())
        log.info("logged in to coordinator", extra={"coordinator": self.base_url})

    def _refresh_tokens(self, stale_access: str | None) -> None:
        with self._lock:
            if self._access != stale_access:
                return  # another thread already refreshed
            if self._refresh:
                response = self._send("POST", "/auth/refresh", json={"refresh_token": self._refresh})
                if response.status_code == 200:
                    self._store_tokens(response.json())
                    return
                log.info("refresh token refused (%s); logging in again", response.status_code)
            self.login()

    def _store_tokens(self, body: dict[str, Any]) -> None:
        self._access = body["access_token"]
        self._refresh = body.get("refresh_token") or self._refresh

    # -- transport -------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CoordinatorUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise CoordinatorUnavailable(f"{method} {path}: {response.status_code} {_detail(response)}")
        return response

    def _authed(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with the bearer token; on 401 refresh (or log in again) once and retry."""
        if self._access is None:
            with self._lock:
                if self._access is None:
                    self.login()
        extra = kwargs.pop("headers", {})
        for attempt in (0, 1):
            token = self._access
            response = self._send(method, path, headers={**extra, "Authorization": f"Bearer {token}"}, **kwargs)
            if response.status_code != 401 or attempt == 1:
                return response
            self._refresh_tokens(token)
        return response  # pragma: no cover

    @staticmethod
    def _raise_for(response: httpx.Response, path: str) -> None:
        code = response.status_code
        if code < 400:
            return
        detail = _detail(response)
        if code in (401, 403):
            raise AuthError(code, detail, path=path)
        if code == 404:
            raise NotFoundError(code, detail, path=path)
        if code == 409:
            raise ConflictError(code, detail, path=path)
        raise CoordinatorError(code, detail, path=path)

    # -- worker API ------------------------------------------------------------------------
    def register_worker(
        self, *, name: str, region: str, public_key: str, specs_json: dict[str, Any]
    ) -> dict[str, Any]:
        """POST /workers/register → the worker record (with `id`)."""
        body = {"name": name, "region": region, "public_key": public_key, "specs_json": specs_json}
        response = self._authed("POST", "/workers/register", json=body)
        self._raise_for(response, "/workers/register")
        return response.json()

    def list_workers(self) -> list[dict[str, Any]]:
        """GET /workers → the caller's own workers."""
        response = self._authed("GET", "/workers")
        self._raise_for(response, "/workers")
        body = response.json()
        return body.get("workers", []) if isinstance(body, dict) else list(body)

    def heartbeat(self, worker_id: Any) -> dict[str, Any]:
        """POST /workers/heartbeat → {worker_id, last_seen_at}."""
        response = self._authed("POST", "/workers/heartbeat", json={"worker_id": worker_id})
        self._raise_for(response, "/workers/heartbeat")
        return response.json()

    def poll(self, worker_id: Any, *, wait_seconds: float = 0) -> Assignment | None:
        """POST /jobs/poll (long-poll up to wait_seconds) → one assignment or None."""
        response = self._authed(
            "POST",
            "/jobs/poll",
            json={"worker_id": worker_id, "wait_seconds": wait_seconds},
            timeout=self._poll_timeout(wait_seconds),
        )
        if response.status_code == 404 and _detail(response) == NO_ASSIGNMENT:
            return None
        if response.status_code == 204:
            return None
        self._raise_for(response, "/jobs/poll")
        return Assignment.from_json(response.json())

    def poll_batch(self, worker_id: Any, *, max_items: int, wait_seconds: float = 0) -> list[Assignment]:
        """POST /jobs/poll-batch → up to max_items assignments (maybe none after the wait).

        Falls back to /jobs/poll (one item) when the coordinator has no poll-batch route.
        """
        if self._poll_batch_supported:
            response = self._authed(
                "POST",
                "/jobs/poll-batch",
                json={"worker_id": worker_id, "max_items": max_items, "wait_seconds": wait_seconds},
                timeout=self._poll_timeout(wait_seconds),
            )
            detail = _detail(response) if response.status_code in (404, 405) else None
            if response.status_code == 405 or (response.status_code == 404 and detail == "Not Found"):
                log.warning("coordinator has no /jobs/poll-batch; falling back to /jobs/poll")
                self._poll_batch_supported = False
            else:
                if response.status_code == 404 and detail == NO_ASSIGNMENT:
                    return []
                self._raise_for(response, "/jobs/poll-batch")
                return [Assignment.from_json(item) for item in orjson.loads(response.content).get("assignments", [])]
        item = self.poll(worker_id, wait_seconds=wait_seconds)
        return [item] if item is not None else []

    def submit(
        self,
        *,
        worker_id: Any,
        assignment_id: int,
        nonce: str,
        signature: str,
        output: Any,
        output_hash: str,
        metrics_json: dict[str, Any] | None = None,
        error_message: str | None = None,
    ) -> dict[str, Any]:
        """POST /jobs/submit; raises ConflictError on 409, CoordinatorError on other 4xx."""
        body: dict[str, Any] = {
            "worker_id": worker_id,
            "assignment_id": assignment_id,
            "nonce": nonce,
            "signature": signature,
            "output": output,
            "output_hash": output_hash,
            "metrics_json": metrics_json or {},
        }
        if error_message is not None:
            body["error_message"] = error_message
        response = self._authed("POST", "/jobs/submit", **_json_body(body))
        self._raise_for(response, "/jobs/submit")
        try:
            return response.json()
        except ValueError:
            return {}

    def submit_batch(self, *, worker_id: Any, results: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """POST /jobs/submit-batch → one answer per result ({status_code, ...}), in order.

        None when the coordinator has no such route (an older one): the caller submits one by one.
        """
        response = self._authed("POST", "/jobs/submit-batch", **_json_body({"worker_id": worker_id, "results": results}))
        if response.status_code in (404, 405) and _detail(response) in ("Not Found", "Method Not Allowed"):
            return None
        self._raise_for(response, "/jobs/submit-batch")
        return list(response.json().get("results", []))

    @staticmethod
    def _poll_timeout(wait_seconds: float) -> httpx.Timeout:
        return httpx.Timeout(
            READ_TIMEOUT, connect=CONNECT_TIMEOUT, read=float(wait_seconds) + POLL_READ_MARGIN
        )
