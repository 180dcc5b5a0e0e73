"""The only place that talks to the coordinator and the gateway: httpx calls, silent refresh, ApiError."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
# The playground waits for a verified result, which can take the gateway's whole poll timeout.
PLAYGROUND_TIMEOUT = httpx.Timeout(60.0, connect=3.0)


def coordinator_url() -> str:
    return os.environ.get("COORDINATOR_URL", "http://127.0.0.1:8001").rstrip("/")


def gateway_url() -> str:
    return os.environ.get("GATEWAY_URL", "http://127.0.0.1:8002").rstrip("/")


class ApiError(Exception):
    """A failed call, with a message fit to show the user and the HTTP status (0 when unreachable)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.message = message
        self.status = status


class SessionExpired(ApiError):
    """The access token was refused and refreshing it failed: the user must log in again."""


@dataclass
class Tokens:
    """An access/refresh pair; refreshed in place so every holder sees the new pair."""

    access_token: str
    refresh_token: str
    # Tabs sharing a session refresh one at a time: the coordinator rotates the refresh token, so a second
    # concurrent refresh with the old one would fail and log the user out.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False, repr=False)


_clients: dict[int, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    # One pooled client per event loop (the Reflex backend runs one loop; tests may run others).
    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=TIMEOUT)
        _clients[loop_id] = client
    return client


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI validation errors
        parts = []
        for item in detail:
            loc = ".".join(str(x) for x in item.get("loc", [])[1:]) if isinstance(item, dict) else ""
            msg = item.get("msg", str(item)) if isinstance(item, dict) else str(item)
            parts.append(f"{loc}: {msg}" if loc else msg)
        detail = "; ".join(parts)
    if detail:
        return str(detail)
    if resp.status_code == 404:
        return "Not found (this endpoint may not exist on the coordinator yet)"
    if resp.status_code >= 500:
        return f"The server answered {resp.status_code}; see its logs"
    return f"Request failed with status {resp.status_code}"


async def _send(
    method: str, url: str, *, timeout: httpx.Timeout | None = None, **kwargs: Any
) -> httpx.Response:
    try:
        return await _client().request(method, url, timeout=timeout or TIMEOUT, **kwargs)
    except httpx.TimeoutException:
        raise ApiError(f"Timed out waiting for {url.split('/')[2]}") from None
    except httpx.HTTPError as exc:
        raise ApiError(f"Cannot reach {url.split('/')[2]} ({type(exc).__name__})") from None


def _body(resp: httpx.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return None
    ctype = resp.headers.get("content-type", "")
    return resp.json() if "json" in ctype else resp.text


async def _public(method: str, path: str, **kwargs: Any) -> Any:
    resp = await _send(method, coordinator_url() + path, **kwargs)
    if resp.status_code >= 400:
        raise ApiError(_message(resp), resp.status_code)
    return _body(resp)


# --- auth (no bearer token) -------------------------------------------------------------------------


async def login(email: str, password: str) -> Tokens:
    data = await _public("POST", "/auth/login", json={"email": email, "password": password})
    return Tokens(data["access_token"], data["refresh_token"])


async def register(email: str, password: str, role: str) -> dict:
    return await _public("POST", "/auth/register", json={"email": email, "password": password, "role": role})


async def refresh(tokens: Tokens) -> None:
    """Swap the pair for a new one (the old refresh token stops working)."""
    try:
        data = await _public("POST", "/auth/refresh", json={"refresh_token": tokens.refresh_token})
    except ApiError as exc:
        raise SessionExpired("Your session expired; please log in again", exc.status) from None
    tokens.access_token = data["access_token"]
    tokens.refresh_token = data["refresh_token"]


async def logout(tokens: Tokens) -> None:
    try:
        await _public("POST", "/auth/logout", json={"refresh_token": tokens.refresh_token})
    except ApiError:
        pass  # the local session is dropped whatever the coordinator says


# --- authenticated calls ----------------------------------------------------------------------------


class CoordinatorApi:
    """Calls made on behalf of one logged-in user; a 401 triggers one refresh and one retry."""

    def __init__(self, tokens: Tokens):
        self.tokens = tokens

    async def _call(self, method: str, path: str, *, base: str | None = None, **kwargs: Any) -> Any:
        url = (base or coordinator_url()) + path
        for attempt in (0, 1):
            used = self.tokens.access_token
            resp = await _send(method, url, headers={"Authorization": f"Bearer {used}"}, **kwargs)
            if resp.status_code == 401 and attempt == 0:
                async with self.tokens.lock:
                    if self.tokens.access_token == used:  # nobody refreshed while we waited
                        await refresh(self.tokens)
                continue
            if resp.status_code == 401:
                raise SessionExpired("Your session expired; please log in again", 401)
            if resp.status_code >= 400:
                raise ApiError(_message(resp), resp.status_code)
            return _body(resp)
        raise AssertionError("unreachable")

    # me
    async def me(self) -> dict:
        return await self._call("GET", "/me")

    async def balance(self) -> dict:
        return await self._call("GET", "/me/balance")

    async def spend(self, days: int = 30) -> dict:
        return await self._call("GET", "/me/spend", params={"days": days})

    async def earnings(self) -> dict:
        return await self._call("GET", "/me/earnings")

    async def ledger(self, *, limit: int = 50, offset: int = 0, kind: str = "") -> dict:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if kind:
            params["kind"] = kind
        return await self._call("GET", "/me/ledger", params=params)

    # client: API keys
    async def api_keys(self) -> list[dict]:
        return (await self._call("GET", "/auth/api-keys")).get("api_keys", [])

    async def create_api_key(self, name: str) -> dict:
        return await self._call("POST", "/auth/api-keys", json={"name": name})

    async def revoke_api_key(self, key_id: int | str) -> None:
        await self._call("DELETE", f"/auth/api-keys/{key_id}")

    # worker owner
    async def my_workers(self) -> list[dict]:
        return (await self._call("GET", "/workers")).get("workers", [])

    async def drain_my_worker(self, worker_id: int | str) -> Any:
        return await self._call("POST", f"/workers/{worker_id}/drain", json={})

    async def resume_my_worker(self, worker_id: int | str) -> Any:
        return await self._call("POST", f"/workers/{worker_id}/resume", json={})

    async def worker_rejections(self, worker_id: int | str) -> list[dict]:
        return (await self._call("GET", f"/workers/{worker_id}/rejections")).get("items", [])

    # admin: workers
    async def admin_workers(self) -> list[dict]:
        return (await self._call("GET", "/admin/workers")).get("workers", [])

    async def admin_worker_action(self, worker_id: int | str, action: str, reason: str) -> Any:
        if action not in ("drain", "resume", "ban", "unban"):
            raise ApiError(f"Unknown action {action}")
        return await self._call("POST", f"/admin/workers/{worker_id}/{action}", json={"reason": reason})

    # admin: jobs
    async def admin_jobs(self, **filters: Any) -> dict:
        params = {k: v for k, v in filters.items() if v not in (None, "")}
        return await self._call("GET", "/admin/jobs", params=params)

    async def admin_job(self, job_id: int | str) -> dict:
        return await self._call("GET", f"/admin/jobs/{job_id}")

    async def enqueue_demo(self, count: int) -> dict:
        return await self._call("POST", "/admin/jobs/enqueue-demo", json={"count": count})

    async def admin_job_action(self, job_id: int | str, action: str, reason: str) -> Any:
        if action not in ("cancel", "requeue"):
            raise ApiError(f"Unknown action {action}")
        return await self._call("POST", f"/admin/jobs/{job_id}/{action}", json={"reason": reason})

    # admin: finance and emission
    async def finance_summary(self) -> dict:
        return await self._call("GET", "/admin/finance/summary")

    async def finance_timeseries(self, days: int = 14) -> dict:
        return await self._call("GET", "/admin/finance/timeseries", params={"days": days})

    async def leaderboard(self) -> list[dict]:
        return (await self._call("GET", "/admin/leaderboard")).get("workers", [])

    async def emission_status(self) -> dict:
        return await self._call("GET", "/admin/emission/status")

    async def emission_run_now(self) -> Any:
        return await self._call("POST", "/admin/emission/run-now")

    async def credit_user(self, user_id: int | str, amount: str, memo: str) -> Any:
        return await self._call(
            "POST", f"/admin/users/{user_id}/credit", json={"amount": amount, "memo": memo}
        )

    async def admin_users(self, role: str = "") -> list[dict]:
        data = await self._call("GET", "/admin/users", params={"role": role} if role else None)
        if isinstance(data, dict):
            return data.get("users", data.get("items", []))
        return data or []


# --- unauthenticated service probes -----------------------------------------------------------------


async def probe(service: str, path: str) -> tuple[int, Any]:
    """GET a health/ready/metrics path on 'coordinator' or 'gateway'; returns (status, body)."""
    base = coordinator_url() if service == "coordinator" else gateway_url()
    resp = await _send("GET", base + path)
    return resp.status_code, _body(resp)


async def playground(api_key: str, kind: str, payload: dict) -> dict:
    """Send a request to the gateway with a client's API key; returns the gateway's JSON answer."""
    path = "/v1/embed" if kind == "embed" else "/v1/rank"
    resp = await _send(
        "POST", gateway_url() + path, json=payload, headers={"X-API-Key": api_key}, timeout=PLAYGROUND_TIMEOUT
    )
    if resp.status_code >= 400:
        raise ApiError(_message(resp), resp.status_code)
    return resp.json()
