"""Fixes found by the schemathesis run, as regression tests, and the 413 body limit on both services."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient

from tests.factories import admin_login, make_user

HUGE = 2**64  # beyond SQLite's 64-bit INTEGER
PG_HUGE = 2**31  # beyond PostgreSQL's 32-bit id columns


# -- out-of-range numbers are the client's fault (were 500 OverflowError / DataError) ---------------
@pytest.mark.parametrize("number", [HUGE, PG_HUGE, -HUGE])
def test_out_of_range_ids_are_422_or_404_never_500(coordinator, settings, number):
    admin = admin_login(coordinator, settings)
    owner = make_user(coordinator, "worker_owner")
    client = make_user(coordinator, "client")
    calls = [
        ("POST", f"/admin/workers/{number}/ban", admin, {"reason": "x"}),
        ("POST", f"/admin/jobs/{number}/cancel", admin, {"reason": "x"}),
        ("GET", f"/admin/jobs/{number}", admin, None),
        ("GET", f"/admin/jobs?client_id={number}", admin, None),
        ("GET", f"/admin/users?offset={abs(number)}", admin, None),
        ("POST", f"/workers/{number}/drain", owner, {}),
        ("GET", f"/workers/{number}/rejections", owner, None),
        ("POST", "/workers/heartbeat", owner, {"worker_id": number}),
        ("POST", "/jobs/submit", owner, {"worker_id": number, "assignment_id": number, "nonce": "n",
                                         "signature": "s", "output": {}, "output_hash": "h"}),
        ("DELETE", f"/auth/api-keys/{number}", client, None),
        ("POST", f"/admin/users/{number}/credit", admin, {"amount": "1", "memo": "x"}),
    ]
    for method, url, who, body in calls:
        r = coordinator.request(method, url, headers=who.headers, json=body)
        allowed = (200, 404, 422) if "?" in url else (404, 422)  # a list filter may just match nothing
        assert r.status_code in allowed, (method, url, r.status_code, r.text)


def test_openapi_documents_string_and_list_422_details(coordinator):
    detail = coordinator.get("/openapi.json").json()["components"]["schemas"]["HTTPValidationError"][
        "properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"]
    assert any(s.get("type") == "array" for s in detail["anyOf"])


# -- 413 with a JSON body on both services ---------------------------------------------------------
def _assert_413_json(r) -> None:
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/json")
    assert "too large" in json.dumps(r.json())
    assert r.headers.get("x-request-id")


def test_coordinator_declared_oversized_body_is_413_json(coordinator, settings):
    body = json.dumps({"email": "a@b.c", "password": "x" * (settings.max_body_bytes + 10), "role": "client"})
    r = coordinator.post("/auth/register", content=body, headers={"Content-Type": "application/json"})
    _assert_413_json(r)


def _stream_to(app, path: str, headers: list[tuple[bytes, bytes]], chunks: int = 64) -> tuple[int, bytes, int]:
    """Send a chunked body (no Content-Length) of chunks × 64 KiB; returns (status, body, chunks pulled)."""
    chunk = b"x" * 65536
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"content-type", b"application/json"), *headers],
             "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {}}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, pulled


def test_coordinator_streamed_oversized_body_is_cut_with_413_json(coordinator, settings):
    token = {"X-Internal-Token": settings.coordinator_internal_token}
    status, body, pulled = _stream_to(coordinator.app, "/internal/jobs",
                                      [(k.lower().encode(), v.encode()) for k, v in token.items()])
    assert status == 413
    assert "too large" in json.loads(body)["detail"]
    assert pulled <= settings.max_body_bytes // 65536 + 2


def test_gateway_native_route_oversized_body_is_413_json():
    from backend.core.config import get_settings
    from backend.core.ratelimit import reset_limiter
    from backend.gateway.main import create_app
    from tests.backend.test_rbac import GOOD_KEY, KeyCheckingCoordinator

    get_settings.cache_clear()
    reset_limiter()
    fake = KeyCheckingCoordinator()
    with TestClient(create_app(coordinator_transport=fake.transport)) as gw:
        body = json.dumps({"text": "x" * (get_settings().max_body_bytes + 1)})
        r = gw.post("/v1/embed", content=body, headers={"X-API-Key": GOOD_KEY, "Content-Type": "application/json"})
        _assert_413_json(r)
        status, raw, _ = _stream_to(gw.app, "/v1/rank", [(b"x-api-key", GOOD_KEY.encode())])
        assert status == 413 and "too large" in json.loads(raw)["detail"]
    assert fake.calls == []
    reset_limiter()
