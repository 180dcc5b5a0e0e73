"""RBAC over every route, generated from both apps' OpenAPI schemas (issue 5).

Each operation in /openapi.json (and each route hidden from it) must appear in the POLICY tables
below; a new route that is missing fails `test_*_every_route_has_a_policy`, and a route whose guard
does not match its policy fails the per-role matrix. Rules beyond the table: only the PUBLIC entries
may answer an anonymous caller; every /admin/* route is admin-only; every /internal/* route needs the
internal token (a user's bearer token, even an admin's, is refused).

Expected status class per (route, caller):
- refused: anonymous → 401; an authenticated role that is not allowed → 403; internal routes → 401
  for anything but the internal token;
- allowed: anything except 401/403 (and never 5xx). Requests carry an empty JSON body and
  non-existent path ids, so an allowed caller typically gets 404/422: it got past the guard.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.backend.gateway.conftest import FakeCoordinator
from tests.factories import admin_login, make_user

PUBLIC = "public"
AUTH = "any authenticated user"
ADMIN = "admin"
INTERNAL = "internal token"
CLIENT = "client"
WORKER_OWNER = "worker_owner"

COORDINATOR_POLICY: dict[tuple[str, str], str] = {
    ("POST", "/auth/register"): PUBLIC,
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/refresh"): PUBLIC,
    # Needs a bearer token or the refresh token in its body (an empty anonymous call is refused).
    ("POST", "/auth/logout"): AUTH,
    ("GET", "/auth/api-keys"): CLIENT,
    ("POST", "/auth/api-keys"): CLIENT,
    ("DELETE", "/auth/api-keys/{key_id}"): CLIENT,
    ("GET", "/me"): AUTH,
    ("GET", "/me/balance"): AUTH,
    ("GET", "/me/ledger"): AUTH,
    ("GET", "/me/spend"): AUTH,
    ("GET", "/me/earnings"): AUTH,
    ("POST", "/workers/register"): WORKER_OWNER,
    # Worker routes take any user: the worker must be the caller's own (else 404 Worker not found).
    ("GET", "/workers"): AUTH,
    ("POST", "/workers/heartbeat"): AUTH,
    ("POST", "/workers/{worker_id}/drain"): AUTH,
    ("POST", "/workers/{worker_id}/resume"): AUTH,
    ("GET", "/workers/{worker_id}/rejections"): AUTH,
    ("POST", "/jobs/poll"): AUTH,
    ("POST", "/jobs/poll-batch"): AUTH,
    ("POST", "/jobs/submit"): AUTH,
    ("POST", "/jobs/submit-batch"): AUTH,
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
}
# Routes left out of the schema (include_in_schema=False); checked too.
COORDINATOR_HIDDEN_PUBLIC = {("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/docs"),
                             ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}

GATEWAY_POLICY: dict[tuple[str, str], str] = {
    ("POST", "/v1/embed"): "api_key",
    ("POST", "/v1/rank"): "api_key",
    ("GET", "/v1/jobs/{job_id}"): "api_key",
    ("POST", "/v1/embeddings"): "api_key",
    ("POST", "/v1/rerank"): "api_key",
    ("GET", "/v1/limits"): PUBLIC,
    ("GET", "/v1/models"): PUBLIC,
    ("GET", "/v1/models/{model}"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
}
GATEWAY_HIDDEN_PUBLIC = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"),
                         ("GET", "/redoc")}

ROLES = ["anonymous", "client", "worker_owner", "admin", "internal"]


def coordinator_policy(method: str, path: str) -> str:
    if path.startswith("/admin/"):
        return ADMIN
    if path.startswith("/internal/"):
        return INTERNAL
    return COORDINATOR_POLICY[(method, path)]


def operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((m.upper(), p) for p, ops in schema["paths"].items() for m in ops
                  if m in ("get", "post", "put", "patch", "delete"))


def hidden_routes(app) -> set[tuple[str, str]]:
    schema_ops = set(operations(app.openapi()))
    out = set()
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        for m in methods - {"HEAD", "OPTIONS"}:
            if (m, route.path) not in schema_ops:
                out.add((m, route.path))
    return out


def concrete(path: str) -> str:
    # Ids that exist nowhere: an allowed caller gets 404/422, never a real object.
    return re.sub(r"\{[^}]+\}", "999999", path)


def expected(policy: str, role: str) -> str:
    if policy == PUBLIC:
        return "allowed"
    if policy == INTERNAL:
        return "allowed" if role == "internal" else "unauthenticated"
    if role in ("anonymous", "internal"):
        return "unauthenticated"
    if policy == AUTH:
        return "allowed"
    if policy == ADMIN:
        return "allowed" if role == "admin" else "forbidden"
    return "allowed" if role == policy else "forbidden"


def classify(status: int) -> str:
    assert status < 500, f"server error {status}"
    return {401: "unauthenticated", 403: "forbidden"}.get(status, "allowed")


# -- coordinator ------------------------------------------------------------------------------------
@pytest.fixture
def callers(coordinator, settings) -> dict[str, dict[str, str]]:
    return {
        "anonymous": {},
        "client": make_user(coordinator, "client").headers,
        "worker_owner": make_user(coordinator, "worker_owner").headers,
        "admin": admin_login(coordinator, settings).headers,
        "internal": {"X-Internal-Token": settings.coordinator_internal_token},
    }


def test_coordinator_every_route_has_a_policy(coordinator):
    app = coordinator.app
    schema = app.openapi()
    missing = [op for op in operations(schema)
               if not op[1].startswith(("/admin/", "/internal/")) and op not in COORDINATOR_POLICY]
    assert not missing, f"routes without an RBAC policy (add them to COORDINATOR_POLICY): {missing}"
    stale = [op for op in COORDINATOR_POLICY if op not in set(operations(schema))]
    assert not stale, f"policies for routes that no longer exist: {stale}"
    unknown_hidden = hidden_routes(app) - COORDINATOR_HIDDEN_PUBLIC
    assert not unknown_hidden, f"routes hidden from the schema without a policy: {unknown_hidden}"
    assert any(p.startswith("/admin/") for _, p in operations(schema))
    assert any(p.startswith("/internal/") for _, p in operations(schema))


def test_coordinator_role_matrix(coordinator, callers):
    app = coordinator.app
    ops = operations(app.openapi())
    failures = []
    for method, path in ops:
        policy = coordinator_policy(method, path)
        for role in ROLES:
            kwargs: dict[str, Any] = {"headers": callers[role]}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["json"] = {}
            if path == "/jobs/poll":
                kwargs["json"] = {"worker_id": 999999, "wait_seconds": 0}
            r = coordinator.request(method, concrete(path), **kwargs)
            got, want = classify(r.status_code), expected(policy, role)
            if got != want:
                failures.append(f"{method} {path} as {role}: {r.status_code} ({got}), expected {want} "
                                f"[policy: {policy}] {r.text[:120]}")
    assert not failures, "\n".join(failures)
    assert len(ops) * len(ROLES) >= 150  # the matrix really covered the API


def test_coordinator_hidden_routes_are_public(coordinator):
    for method, path in sorted(COORDINATOR_HIDDEN_PUBLIC):
        r = coordinator.request(method, path)
        assert r.status_code == 200, (method, path, r.status_code)


def test_internal_routes_refuse_a_wrong_or_previous_less_token(coordinator, callers):
    for method, path in operations(coordinator.app.openapi()):
        if not path.startswith("/internal/"):
            continue
        for headers in ({"X-Internal-Token": "wrong"}, {"X-Internal-Token": ""},
                        {**callers["admin"], "X-Internal-Token": "wrong"}):
            r = coordinator.request(method, concrete(path), json={}, headers=headers)
            assert r.status_code == 401, (path, headers, r.status_code)


def test_internal_token_rotation_accepts_current_and_previous(monkeypatch):
    """During a rotation the coordinator takes the new token and the previous one, and no other."""
    from backend.core.config import get_settings

    monkeypatch.setenv("COORDINATOR_INTERNAL_TOKEN", "new-internal-token")
    monkeypatch.setenv("COORDINATOR_INTERNAL_TOKEN_PREVIOUS", "old-internal-token")
    get_settings.cache_clear()
    from backend.coordinator.main import create_app

    try:
        with TestClient(create_app()) as c:
            body = {"api_key": "om_nope"}
            for token, status in (("new-internal-token", 401), ("old-internal-token", 401), ("other", 401)):
                r = c.post("/internal/api-keys/check", json=body, headers={"X-Internal-Token": token})
                assert r.status_code == status
                # 401 "Invalid API key" means the token passed; "Invalid internal token" means it did not.
                passed = r.json()["detail"] == "Invalid API key"
                assert passed is (token != "other"), (token, r.json())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


# -- gateway ----------------------------------------------------------------------------------------
GOOD_KEY = "om_rbac-good-key-0123456789"


class KeyCheckingCoordinator(FakeCoordinator):
    """The fake coordinator, but it refuses every API key except GOOD_KEY, like the real one."""

    async def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/internal/"):
            import json

            if json.loads(request.content).get("api_key") != GOOD_KEY:
                return httpx.Response(401, json={"detail": "Invalid API key"})
        return await super().handler(request)


@pytest.fixture
def gateway(monkeypatch) -> TestClient:
    from backend.core.config import get_settings
    from backend.core.ratelimit import reset_limiter

    get_settings.cache_clear()
    reset_limiter()
    from backend.gateway.main import create_app

    fake = KeyCheckingCoordinator()
    with TestClient(create_app(coordinator_transport=fake.transport), raise_server_exceptions=False) as tc:
        yield tc
    reset_limiter()


GATEWAY_BODIES = {
    "/v1/embed": {"text": "a"},
    "/v1/rank": {"query": "q", "texts": ["a", "b"]},
    "/v1/embeddings": {"input": "a"},
    "/v1/rerank": {"query": "q", "documents": ["a", "b"]},
}

GATEWAY_CALLERS = {
    "anonymous": {},
    "unknown key": {"X-API-Key": "om_not-a-real-key-000000000"},
    "malformed key": {"X-API-Key": "has spaces in it"},
    "api key": {"X-API-Key": GOOD_KEY},
    "api key as bearer": {"Authorization": f"Bearer {GOOD_KEY}"},
    "user jwt as bearer": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"},
}


def test_gateway_every_route_has_a_policy(gateway):
    schema = gateway.app.openapi()
    missing = [op for op in operations(schema) if op not in GATEWAY_POLICY]
    assert not missing, f"gateway routes without an RBAC policy (add them to GATEWAY_POLICY): {missing}"
    stale = [op for op in GATEWAY_POLICY if op not in set(operations(schema))]
    assert not stale, f"policies for routes that no longer exist: {stale}"
    unknown_hidden = hidden_routes(gateway.app) - GATEWAY_HIDDEN_PUBLIC
    assert not unknown_hidden, f"gateway routes hidden from the schema without a policy: {unknown_hidden}"


def test_gateway_caller_matrix(gateway):
    failures = []
    for method, path in operations(gateway.app.openapi()):
        policy = GATEWAY_POLICY[(method, path)]
        for caller, headers in GATEWAY_CALLERS.items():
            url = path.replace("{model}", "all-MiniLM-L6-v2") if "{model}" in path else concrete(path)
            kwargs: dict[str, Any] = {"headers": headers}
            if method == "POST":
                # Valid bodies: the key is checked by the coordinator in the job call itself, after
                # the gateway validated the body, so an unknown key with a bad body is a 422.
                kwargs["json"] = GATEWAY_BODIES[path]
            r = gateway.request(method, url, **kwargs)
            got = classify(r.status_code)
            want = "allowed" if policy == PUBLIC or caller.startswith("api key") else "unauthenticated"
            if got != want:
                failures.append(f"{method} {path} as {caller}: {r.status_code}, expected {want} "
                                f"{r.text[:120]}")
    assert not failures, "\n".join(failures)
