"""Schemathesis (property-based fuzzing from the OpenAPI schema) against both apps, in process.

The coordinator is called through schemathesis' own ASGI client (it runs the app's lifespan once, in
its event loop), authenticated per route with a token of the role the route needs (admin for /admin/*,
the internal token for /internal/*, a client for /auth/api-keys, a worker owner for worker routes), and
with the real API key / worker id put into bodies, so generated calls reach past the auth layer into
the services. The gateway runs against a key-checking fake coordinator with a valid API key.

Checks: `not_a_server_error` and `response_schema_conformance`. Bounded and deterministic: a fixed
seed, few examples per operation, long-poll and verification waits capped at 0.1 s.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.backend.test_rbac import GOOD_KEY, KeyCheckingCoordinator

CHECKS = [not_a_server_error, response_schema_conformance]
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12"))
SEED = 20261203
# No shrinking: a failure is reported with its curl reproduction as generated, and the run stays short.
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
MAX_WAIT = 0.1


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # The stateful phase (link-following sequences) is what `tests/backend/*` does by hand; keep
        # this run bounded to per-operation examples, coverage cases and fuzzing.
        "phases": {"stateful": {"enabled": False}},
    })


# -- coordinator ------------------------------------------------------------------------------------
class CoordinatorWorld:
    """Real users, a funded API key and an online worker, made through the API itself."""

    def __init__(self, app) -> None:
        from nacl.signing import SigningKey

        from backend.core.canonical import b64url_encode
        from backend.core.config import get_settings
        from tests.factories import PASSWORD, random_email

        s = get_settings()
        self.client = asgi.get_client(app).__enter__()
        c = self.client

        def login(email: str, password: str) -> dict[str, str]:
            r = c.post("/auth/login", json={"email": email, "password": password})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        def user(role: str) -> tuple[int, dict[str, str]]:
            email = random_email(role)
            r = c.post("/auth/register", json={"email": email, "password": PASSWORD, "role": role})
            assert r.status_code == 201, r.text
            return r.json()["id"], login(email, PASSWORD)

        self.admin = login(s.admin_email, s.admin_password)
        self.client_id, self.client_headers = user("client")
        _, self.owner = user("worker_owner")
        r = c.post("/auth/api-keys", json={"name": "fuzz"}, headers=self.client_headers)
        assert r.status_code == 201, r.text
        self.api_key = r.json()["key"]
        r = c.post(f"/admin/users/{self.client_id}/credit", json={"amount": "1000", "memo": "fuzz"},
                   headers=self.admin)
        assert r.status_code == 201, r.text
        key = SigningKey.generate()
        r = c.post("/workers/register", headers=self.owner, json={
            "name": "fuzz-worker", "region": "test", "public_key": b64url_encode(bytes(key.verify_key)),
            "specs_json": {"reputation": 0.9, "estimated_latency_ms": 100, "max_concurrency": 4}})
        assert r.status_code == 201, r.text
        self.worker_id = r.json()["id"]
        self.internal = {"X-Internal-Token": s.coordinator_internal_token}

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/internal/"):
            return self.internal
        if path.startswith("/auth/api-keys") or path.startswith("/me"):
            return self.client_headers
        if path.startswith(("/workers", "/jobs/")):
            return self.owner
        return self.admin

    def prepare(self, case) -> None:
        body = case.body
        if isinstance(body, dict):
            if "wait_seconds" in body and isinstance(body["wait_seconds"], int | float) \
                    and not isinstance(body["wait_seconds"], bool):
                body["wait_seconds"] = min(max(body["wait_seconds"], 0), MAX_WAIT)
            if case.operation.path.startswith("/internal/") and isinstance(body.get("api_key"), str):
                body["api_key"] = self.api_key
            if isinstance(body.get("worker_id"), int) and not isinstance(body["worker_id"], bool):
                body["worker_id"] = self.worker_id
        path = case.operation.path
        if path == "/auth/login" and isinstance(body, dict) and isinstance(body.get("email"), str):
            # Keep the admin (and our users) unlockable: never fuzz the real accounts' logins.
            body["email"] = "fuzz-" + body["email"]


def fuzz(schema, headers_for, prepare=lambda case: None) -> tuple[int, list[str]]:
    """Every operation × (positive, negative) generation mode; returns (cases run, failure reports).

    (schemathesis' own pytest plugin cannot parametrize lazily under pytest 9, so the operations are
    walked here; each one is a Hypothesis test of its own with the fixed settings above.)
    """
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            n, failure = _fuzz_operation(operation, mode, headers_for, prepare)
            count += n
            if failure:
                failures.append(f"{operation.method.upper()} {operation.path} [{mode.value}]: {failure}")
    return count, failures


def _fuzz_operation(operation, mode, headers_for, prepare) -> tuple[int, str | None]:
    seen: list[str] = []  # the first failure (Hypothesis replays it before raising)
    count = 0

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        nonlocal count
        count += 1
        prepare(case)
        try:
            case.call_and_validate(headers=headers_for(case.operation.path), checks=CHECKS)
        except BaseException as exc:  # FailureGroup is a BaseExceptionGroup
            if isinstance(exc, KeyboardInterrupt):
                raise
            if not seen:
                seen.append(f"{type(exc).__name__}: {str(exc)[:1500]}")
            raise

    try:
        run()
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - reported through `seen`
        pass
    return count, (seen[0] if seen else None)


@pytest.fixture
def coordinator_app():
    from backend.coordinator.main import create_app

    app = create_app()
    yield app
    asgi.shutdown_lifespans()


def test_coordinator_openapi_fuzz(coordinator_app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", coordinator_app, config=_config())
    world = CoordinatorWorld(coordinator_app)
    count, failures = fuzz(schema, world.headers_for, world.prepare)
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)
    assert count >= 40 * MAX_EXAMPLES // 2


def test_gateway_openapi_fuzz():
    from backend.core.config import get_settings
    from backend.core.ratelimit import reset_limiter

    get_settings.cache_clear()
    reset_limiter()
    from backend.gateway.main import create_app

    app = create_app(coordinator_transport=KeyCheckingCoordinator().transport)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config())
        count, failures = fuzz(schema, lambda path: {"X-API-Key": GOOD_KEY})
    finally:
        asgi.shutdown_lifespans()
        reset_limiter()
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)
    assert count >= 10 * MAX_EXAMPLES // 2
