"""Gateway tests run against a FAKE coordinator (an httpx.MockTransport), never the real one."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from backend.core.config import get_settings
from backend.core.ratelimit import RateLimiter, reset_limiter

API_KEY = "om_test-key-0123456789abcdef"
HEADERS = {"X-API-Key": API_KEY}
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
"""The Redis tests run against TEST_REDIS_URL (CI: redis://127.0.0.1:6379/0) and skip without it."""
REDIS_SKIP = "TEST_REDIS_URL not set (CI: redis://127.0.0.1:6379/0): Redis test skipped"


def fake_vector(seed: int = 0) -> list[float]:
    # Multiples of 1/1024 are exact in float32, so base64 round trips compare equal.
    return [((i * 7 + seed * 13) % 512 - 256) / 1024 for i in range(384)]


class FakeCoordinator:
    """Answers /internal/* like docs/architecture.md says; records every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.next_status: int | None = None
        self.next_detail: Any = None
        self.healthy = True
        self._job_id = 0

    def fail_with(self, status: int, detail: Any) -> None:
        self.next_status, self.next_detail = status, detail

    def _job(self, job_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._job_id += 1
        if job_type == "embed":
            output = {"embedding": fake_vector(self._job_id)}
            tokens = len(payload["text"].split()) + 2
        else:
            texts = payload["texts"]
            scores = [round(1.0 / (1 + len(t)), 6) for t in texts]
            order = sorted(range(len(texts)), key=lambda i: (-scores[i], i))
            output = {"indices": order, "scores": [scores[i] for i in order]}
            tokens = sum(len(t.split()) + 2 for t in texts)
        return {"job_id": self._job_id, "status": "verified", "output": output,
                "verification": {"replicas": 2, "agreed": True},
                "usage": {"tokens": tokens, "truncated": False}, "price": "0.001"}

    async def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200 if self.healthy else 503, json={"status": "ok"})
        body = json.loads(request.content)
        self.calls.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        if self.next_status is not None:
            return httpx.Response(self.next_status, json={"detail": self.next_detail})
        if request.url.path == "/internal/jobs":
            return httpx.Response(200, json=self._job(body["job_type"], body["payload"]))
        if request.url.path == "/internal/jobs/batch":
            return httpx.Response(200, json={"results": [self._job(body["job_type"], p) for p in body["payloads"]]})
        if request.url.path.endswith("/receipt"):
            return httpx.Response(404, json={"detail": "Job not found"})
        return httpx.Response(404, json={"detail": "Not Found"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


@pytest.fixture
def fake() -> FakeCoordinator:
    return FakeCoordinator()


@pytest.fixture
def redis_available() -> bool:
    """False without TEST_REDIS_URL (the test skips with REDIS_SKIP); set but unreachable fails loudly."""
    if not REDIS_URL:
        return False
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"TEST_REDIS_URL={REDIS_URL} is set but Redis is unreachable: {exc}")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A per-test key prefix; its keys are deleted afterwards."""
    prefix = f"openmesh-gwtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    if not REDIS_URL:
        return
    try:
        import redis

        r = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
        for key in r.scan_iter(f"{prefix}:*"):
            r.delete(key)
    except Exception:  # noqa: BLE001
        pass


@pytest.fixture
def make_gateway(monkeypatch, fake) -> Iterator[Callable[..., TestClient]]:
    """`make_gateway(RATE_LIMIT_PER_MINUTE_IP="5", client=("203.0.113.7", 5000))` → a started TestClient."""
    clients: list[TestClient] = []

    def build(*, client: tuple[str, int] = ("198.51.100.1", 40000), limiter: RateLimiter | None = None,
              transport: httpx.AsyncBaseTransport | None = None, **env: str) -> TestClient:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        reset_limiter()
        from backend.gateway.main import create_app

        app = create_app(coordinator_transport=transport or fake.transport, limiter=limiter)
        tc = TestClient(app, client=client, raise_server_exceptions=False)
        tc.__enter__()
        clients.append(tc)
        return tc

    yield build
    for tc in clients:
        tc.__exit__(None, None, None)
    get_settings.cache_clear()
    reset_limiter()
