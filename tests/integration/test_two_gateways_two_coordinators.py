"""Two gateways and two coordinators (real uvicorn processes) on one PostgreSQL database and one Redis
prefix serve one pool correctly (issue 5).

Layout: gateway A → coordinator A, gateway B → coordinator B; simulated workers (Ed25519-signed with
PyNaCl, like tests/factories.py; deterministic unit vectors, no model) heartbeat and poll coordinator
B only. So a request entering gateway A is held by coordinator A while coordinator B verifies it: it
is answered only because the processes share the database and Redis carries the wake-up.
Both coordinators start at the same moment on an empty database with RUN_MIGRATIONS=true (the
advisory lock keeps them from racing).

Then 3N concurrent requests with one API key, split over both gateways, with RATE_LIMIT_PER_MINUTE_API_KEY=N:
exactly N are accepted (and answered with verified results), 2N get 429, and only N jobs exist.
(tests/backend/gateway/test_ratelimit.py checks the limiter itself with in-process gateways and a fake
coordinator; this is the same rule end to end across processes.)
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey

from backend import localpool
from backend.core.canonical import b64url_encode
from tests.factories import PASSWORD, TestWorker, random_email

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
N = 8  # per-key limit for the burst
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.postgres, pytest.mark.redis,
    pytest.mark.skipif(not (PG_ADMIN_URL and REDIS_URL),
                       reason="needs TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL (Redis): several "
                              "processes can only share PostgreSQL + Redis"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_embedding(text: str) -> list[float]:
    """A deterministic unit vector per text (what two honest workers agree on)."""
    raw = [((b - 127.5) / 127.5) for b in hashlib.sha512(text.encode()).digest() * 6][:384]
    norm = math.sqrt(math.fsum(x * x for x in raw))
    return [x / norm for x in raw]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def compute(job: dict) -> dict:
    payload = job["payload"]
    if job["job_type"] == "embed":
        return {"embedding": fake_embedding(payload["text"])}
    q = fake_embedding(payload["query"])
    scores = [round(cosine(q, fake_embedding(t)), 6) for t in payload["texts"]]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return {"indices": order, "scores": [scores[i] for i in order]}


@dataclass
class Cluster:
    coordinators: list[str]
    gateways: list[str]
    admin: dict[str, str]
    client: dict[str, str]
    client_id: int
    pool: localpool.Pool


class SimulatedWorker(threading.Thread):
    def __init__(self, worker: TestWorker, coordinator_url: str) -> None:
        super().__init__(daemon=True)
        self.worker, self.url = worker, coordinator_url
        self.stop = threading.Event()
        self.submitted = 0
        self.errors: list[str] = []
        self.transport_errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._loop()
            except httpx.TransportError as exc:  # a dropped keep-alive connection: retry, as a real worker does
                self.transport_errors.append(repr(exc))
                time.sleep(0.1)

    def _loop(self) -> None:
        h = self.worker.owner.headers
        with httpx.Client(base_url=self.url, timeout=15) as c:
            last_beat = 0.0
            while not self.stop.is_set():
                if time.monotonic() - last_beat > 2:
                    c.post("/workers/heartbeat", json={"worker_id": self.worker.id}, headers=h)
                    last_beat = time.monotonic()
                r = c.post("/jobs/poll", json={"worker_id": self.worker.id, "wait_seconds": 1}, headers=h)
                if r.status_code == 404:
                    continue
                if r.status_code != 200:
                    self.errors.append(f"poll {r.status_code} {r.text[:200]}")
                    time.sleep(0.2)
                    continue
                a = r.json()
                body = self.worker.sign(a["assignment_id"], a["nonce"], compute(a["job"]))
                s = c.post("/jobs/submit", json=body, headers=h)
                if s.status_code != 200:
                    self.errors.append(f"submit {s.status_code} {s.text[:200]}")
                else:
                    self.submitted += 1


def _login(c: httpx.Client, email: str, password: str) -> dict[str, str]:
    r = c.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@dataclass
class _Account:
    headers: dict[str, str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    import psycopg
    import redis

    run = uuid.uuid4().hex[:10]
    db = f"openmesh_mp_{run}"
    prefix = f"openmesh-mp-{run}"
    admin_url = PG_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    tmp = tmp_path_factory.mktemp("cluster")
    pool = localpool.Pool(logs=tmp / "logs")
    cports, gports = [free_port(), free_port()], [free_port(), free_port()]
    admin_email, admin_password = "admin@mp.test", "admin-mp-password-123"
    env = {
        "ENVIRONMENT": "test", "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}",
        "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix, "RUN_MIGRATIONS": "true",
        "JWT_SECRET": "mp-secret-" + "y" * 40, "COORDINATOR_INTERNAL_TOKEN": "mp-internal-token",
        "ADMIN_EMAIL": admin_email, "ADMIN_PASSWORD": admin_password, "AUDIT_RATE": "0",
        "SCHEDULER_ENABLED": "true", "POLL_TIMEOUT_SECONDS": "20",
        "RATE_LIMIT_PER_MINUTE_API_KEY": str(N), "RATE_LIMIT_PER_MINUTE_IP": "100000",
        "RATE_LIMIT_LOGIN_PER_MINUTE": "100000", "PYTHONPATH": str(REPO),
    }
    try:
        # Both coordinators at once on the empty database: the migration lock is exercised here.
        for name, port in zip("ab", cports, strict=True):
            pool.start(f"coordinator-{name}", [sys.executable, "-m", "backend.cli", "coordinator",
                                               "--port", str(port)], env)
        coordinators = [f"http://127.0.0.1:{p}" for p in cports]
        for url in coordinators:
            localpool._wait_http(pool, f"{url}/health", "coordinator", timeout=60)
        for name, port, curl in zip("ab", gports, coordinators, strict=True):
            pool.start(f"gateway-{name}", [sys.executable, "-m", "backend.cli", "gateway", "--port", str(port)],
                       {**env, "COORDINATOR_URL": curl})
        gateways = [f"http://127.0.0.1:{p}" for p in gports]
        for url in gateways:
            localpool._wait_http(pool, f"{url}/health", "gateway", timeout=60)

        with httpx.Client(base_url=coordinators[0], timeout=30) as c:
            admin = _login(c, admin_email, admin_password)
            email = random_email("mp-client")
            r = c.post("/auth/register", json={"email": email, "password": PASSWORD, "role": "client"})
            assert r.status_code == 201, r.text
            client_id = r.json()["id"]
            client = _login(c, email, PASSWORD)
            r = c.post(f"/admin/users/{client_id}/credit", json={"amount": "100", "memo": "mp"}, headers=admin)
            assert r.status_code == 201, r.text
        yield Cluster(coordinators, gateways, admin, client, client_id, pool)
    finally:
        pool.stop()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{prefix}:*"):
            r.delete(key)


@pytest.fixture(scope="module")
def workers(cluster) -> Iterator[list[SimulatedWorker]]:
    """Two workers of two owners, talking to coordinator B only."""
    threads = []
    with httpx.Client(base_url=cluster.coordinators[1], timeout=30) as c:
        for i in range(2):
            email = random_email(f"mp-owner{i}")
            r = c.post("/auth/register", json={"email": email, "password": PASSWORD, "role": "worker_owner"})
            assert r.status_code == 201, r.text
            owner = _login(c, email, PASSWORD)
            key = SigningKey.generate()
            r = c.post("/workers/register", headers=owner, json={
                "name": f"mp-w{i}-{uuid.uuid4().hex[:6]}", "region": "test",
                "public_key": b64url_encode(bytes(key.verify_key)),
                "specs_json": {"reputation": 0.9, "estimated_latency_ms": 50, "max_concurrency": 16}})
            assert r.status_code == 201, r.text
            tw = TestWorker(r.json()["id"], _Account(owner), key)  # type: ignore[arg-type]
            threads.append(SimulatedWorker(tw, cluster.coordinators[1]))
    for t in threads:
        t.start()
    yield threads
    for t in threads:
        t.stop.set()
    for t in threads:
        t.join(10)


def _api_key(cluster: Cluster, name: str) -> str:
    r = httpx.post(f"{cluster.coordinators[1]}/auth/api-keys", json={"name": name}, headers=cluster.client,
                   timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _balance(url: str, headers: dict[str, str]) -> dict:
    r = httpx.get(f"{url}/me/balance", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_both_coordinators_migrated_one_schema(cluster):
    for url in cluster.coordinators:
        r = httpx.get(f"{url}/ready", timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["database"] == {"ok": True, "backend": "postgresql"}
        assert body["redis"] == {"configured": True, "ok": True}
    for url in cluster.gateways:
        assert httpx.get(f"{url}/ready", timeout=10).json()["rate_limit"]["backend"] == "redis"


def test_request_through_gateway_a_is_verified_by_workers_on_coordinator_b(cluster, workers):
    key = _api_key(cluster, "mp-jobs")
    before = Decimal(_balance(cluster.coordinators[0], cluster.client)["balance"])
    text = "OpenMesh é uma rede distribuída."
    start = time.monotonic()
    r = httpx.post(f"{cluster.gateways[0]}/v1/embed", json={"text": text}, headers={"X-API-Key": key}, timeout=30)
    elapsed = time.monotonic() - start
    assert r.status_code == 200, r.text
    body = r.json()
    assert cosine(body["output"]["embedding"], fake_embedding(text)) > 0.999999
    assert elapsed < 10, f"answer took {elapsed:.1f} s: cross-process wake-up not working"

    r = httpx.post(f"{cluster.gateways[1]}/v1/rank", headers={"X-API-Key": key}, timeout=30,
                   json={"query": "infra distribuída", "texts": ["OpenMesh", "banco relacional", "fila assíncrona"]})
    assert r.status_code == 200, r.text
    expected = compute({"job_type": "rank", "payload": {"query": "infra distribuída",
                                                        "texts": ["OpenMesh", "banco relacional", "fila assíncrona"]}})
    assert r.json()["output"]["indices"] == expected["indices"]

    # The receipt is the same from either side; the two agreeing workers are the simulated ones.
    job_id = body["job_id"]
    ra = httpx.get(f"{cluster.gateways[1]}/v1/jobs/{job_id}", headers={"X-API-Key": key}, timeout=30)
    assert ra.status_code == 200, ra.text
    assert ra.json()["status"] == "verified"
    detail = httpx.get(f"{cluster.coordinators[0]}/admin/jobs/{job_id}", headers=cluster.admin, timeout=30).json()
    worker_ids = {w.worker.id for w in workers}
    accepted = {a["worker_id"] for a in detail["assignments"] if a["status"] == "accepted"}
    assert accepted == worker_ids

    # Charged once, seen identically by both coordinators.
    after_a = _balance(cluster.coordinators[0], cluster.client)
    after_b = _balance(cluster.coordinators[1], cluster.client)
    assert after_a == after_b
    assert Decimal(after_a["balance"]) < before and after_a["reserved"] == "0"
    summary = httpx.get(f"{cluster.coordinators[1]}/admin/finance/summary", headers=cluster.admin, timeout=30)
    assert summary.status_code == 200
    assert not any(w.errors for w in workers), [w.errors for w in workers]


def test_3n_concurrent_requests_across_both_gateways_admit_exactly_n(cluster, workers):
    key = _api_key(cluster, "mp-burst")
    jobs_before = httpx.get(f"{cluster.coordinators[0]}/admin/jobs?limit=1", headers=cluster.admin,
                            timeout=30).json()["total"]
    barrier = threading.Barrier(3 * N)

    def call(i: int) -> httpx.Response:
        gw = cluster.gateways[i % 2]
        barrier.wait()
        return httpx.post(f"{gw}/v1/embed", json={"text": f"burst {i}"}, headers={"X-API-Key": key}, timeout=40)

    with ThreadPoolExecutor(3 * N) as ex:
        responses = list(ex.map(call, range(3 * N)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == N, [(r.status_code, r.text[:300]) for r in responses if r.status_code not in (200, 429)]
    assert codes.count(429) == 2 * N, codes
    for i, r in enumerate(responses):
        if r.status_code == 200:
            assert cosine(r.json()["output"]["embedding"], fake_embedding(f"burst {i}")) > 0.999999
        else:
            assert r.json() == {"detail": "Rate limit exceeded"} and int(r.headers["Retry-After"]) >= 1
    # both gateways took part in the admissions and in the refusals
    assert {i % 2 for i, c in enumerate(codes) if c == 429} == {0, 1}
    jobs_after = httpx.get(f"{cluster.coordinators[0]}/admin/jobs?limit=1", headers=cluster.admin,
                           timeout=30).json()["total"]
    assert jobs_after - jobs_before == N  # refused requests never reached a coordinator
    inv = httpx.get(f"{cluster.coordinators[1]}/admin/finance/summary", headers=cluster.admin, timeout=30).json()
    assert inv["invariant"]["ok"] is True, inv["invariant"]
