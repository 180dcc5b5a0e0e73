"""Burst-mode workers against the real coordinator app (in-process): two honest workers verify jobs."""

from __future__ import annotations

import httpx
import pytest

from worker.client import CoordinatorClient
from worker.runner import Runner, RunnerConfig
from worker.signing import generate_key, public_key_b64url


def _via_testclient(coordinator) -> httpx.MockTransport:
    """Relay the worker's httpx requests into the in-process app through its TestClient."""

    def handle(request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        r = coordinator.request(request.method, request.url.path, content=request.content, headers=headers)
        return httpx.Response(
            r.status_code, headers={"content-type": r.headers.get("content-type", "")}, content=r.content
        )

    return httpx.MockTransport(handle)


def _owner_client(coordinator, email: str) -> CoordinatorClient:
    response = coordinator.post(
        "/auth/register", json={"email": email, "password": "owner-pass-123456", "role": "worker_owner"}
    )
    assert response.status_code == 201, response.text
    return CoordinatorClient(
        str(coordinator.base_url),
        email=email,
        password="owner-pass-123456",
        transport=_via_testclient(coordinator),
    )


def test_two_workers_verify_demo_jobs(coordinator, onnx_encoder, settings):
    runners = []
    for n in (1, 2):
        client = _owner_client(coordinator, f"owner{n}@test.local")
        key = generate_key()
        worker = client.register_worker(
            name=f"w{n}",
            region="eu",
            public_key=public_key_b64url(key),
            specs_json={"max_concurrency": 16, "backend": "onnx", "dtype": "fp32"},
        )
        config = RunnerConfig(
            worker_id=worker["id"], batch_size=16, wait_seconds=0, burst=True, heartbeat=False
        )
        runner = Runner(client, onnx_encoder, key, config)
        client.heartbeat(worker["id"])
        runners.append(runner)

    token = coordinator.post(
        "/auth/login", json={"email": settings.admin_email, "password": settings.admin_password}
    ).json()["access_token"]
    response = coordinator.post(
        "/admin/jobs/enqueue-demo", json={"count": 3}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    job_ids = response.json()["job_ids"]

    for runner in runners:
        counters = runner.run()
        assert counters.refused == 0 and counters.conflicts == 0
        assert counters.submitted >= 1

    jobs = coordinator.get("/admin/jobs", headers={"Authorization": f"Bearer {token}"}).json()
    items = jobs.get("items") or jobs.get("jobs") or []
    statuses = {j["id"]: j["status"] for j in items}
    if not statuses:
        pytest.skip(f"unexpected /admin/jobs shape: {list(jobs)}")
    assert all(statuses[j] == "verified" for j in job_ids), statuses
