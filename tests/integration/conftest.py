"""A real pool in child processes, started once per test session for the e2e tests.

Coordinator, gateway and worker processes (the real model, ONNX backend) on free ports, with a
temporary SQLite database and data directory. Process handling and demo seeding are
backend/localpool.py's (`Pool`, `seed`), the worker command line is worker/cli.py's `run_command`.
Short liveness settings (lease, sweep, heartbeat) so the fault tests finish in seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend import localpool
from backend.core.config import get_settings

LEASE_SECONDS = 3.0
SWEEP_SECONDS = 0.5
HEARTBEAT_TIMEOUT_SECONDS = 6.0
N_WORKERS = 3
"""Registered at start; the first two run from the start, the third joins for the worker-kill test."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LivePool:
    pool: localpool.Pool
    tmp: Path
    env: dict[str, str]
    coordinator_url: str
    gateway_url: str
    api_key: str
    workers: list[dict[str, Any]]
    client_email: str
    owner_email: str
    password: str
    running: set[str] = field(default_factory=set)

    # -- processes ------------------------------------------------------------------------------
    def start_coordinator(self) -> None:
        port = self.coordinator_url.rsplit(":", 1)[1]
        self.pool.start("coordinator", [_py(), "-m", "backend.cli", "coordinator", "--port", port], self.env)
        localpool._wait_http(self.pool, f"{self.coordinator_url}/health", "coordinator", timeout=60)

    def start_gateway(self) -> None:
        port = self.gateway_url.rsplit(":", 1)[1]
        self.pool.start("gateway", [_py(), "-m", "backend.cli", "gateway", "--port", port], self.env)
        localpool._wait_http(self.pool, f"{self.gateway_url}/health", "gateway", timeout=60)

    def start_worker(self, index: int) -> None:
        from worker.cli import run_command

        w = self.workers[index]
        cmd = run_command(self.coordinator_url, worker_id=w["id"], key_file=w["key_file"], backend="onnx",
                          threads=1, extra=["--heartbeat-interval", "1", "--wait-seconds", "5"])
        self.pool.start(w["name"], cmd, {**self.env, "OPENMESH_EMAIL": self.owner_email,
                                          "OPENMESH_PASSWORD": self.password})
        self.running.add(w["name"])

    def proc(self, name: str):
        return next(p for n, p in reversed(self.pool.procs) if n == name)

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.proc(name).pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL a child (and its group) and forget it, so `check_alive` does not complain."""
        proc = self.proc(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        self.pool.procs = [(n, p) for n, p in self.pool.procs if p is not proc]
        self.running.discard(name)

    def wait_online(self, n: int, timeout: float = 120) -> None:
        localpool._wait_workers_online(self.pool, self.coordinator_url, n, timeout=timeout)

    # -- HTTP helpers ---------------------------------------------------------------------------
    def admin_headers(self) -> dict[str, str]:
        s = get_settings()
        r = httpx.post(f"{self.coordinator_url}/auth/login", json={"email": s.admin_email,
                                                                  "password": s.admin_password}, timeout=10)
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def user_headers(self, email: str) -> dict[str, str]:
        r = httpx.post(f"{self.coordinator_url}/auth/login", json={"email": email, "password": self.password},
                       timeout=10)
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def coordinator(self, method: str, path: str, headers: dict[str, str] | None = None,
                    **kw) -> httpx.Response:
        return httpx.request(method, f"{self.coordinator_url}{path}", headers=headers or self.admin_headers(),
                             timeout=30, **kw)

    def gateway(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, f"{self.gateway_url}{path}", headers={"X-API-Key": self.api_key},
                             timeout=60, **kw)


def _py() -> str:
    import sys

    return sys.executable


@pytest.fixture(scope="session")
def live_pool() -> Iterator[LivePool]:
    tmp = Path(tempfile.mkdtemp(prefix="openmesh-e2e-"))
    co_port, gw_port = free_port(), free_port()
    co_url, gw_url = f"http://127.0.0.1:{co_port}", f"http://127.0.0.1:{gw_port}"
    s = get_settings()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'pool.db'}",
        "COORDINATOR_URL": co_url,
        "GATEWAY_URL": gw_url,
        "JWT_SECRET": s.jwt_secret,
        "COORDINATOR_INTERNAL_TOKEN": s.coordinator_internal_token,
        "ADMIN_EMAIL": s.admin_email,
        "ADMIN_PASSWORD": s.admin_password,
        "SCHEDULER_ENABLED": "true",
        "SWEEP_INTERVAL_SECONDS": str(SWEEP_SECONDS),
        "ASSIGNMENT_LEASE_SECONDS": str(LEASE_SECONDS),
        "HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
        "AUDIT_RATE": "0",
        "POLL_TIMEOUT_SECONDS": "30",
        "ENABLE_PROMETHEUS_METRICS": "true",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "OPENMESH_WORKER_THREADS": "1",
    }
    # Keys and logs of this pool live in its temp dir, never in the repo's .openmesh/.
    saved_data_dir = localpool.DATA_DIR
    localpool.DATA_DIR = tmp
    pool = localpool.Pool()
    pool.logs = tmp / "logs"
    pool.logs.mkdir(parents=True, exist_ok=True)
    live = None
    try:
        live = LivePool(pool=pool, tmp=tmp, env=env, coordinator_url=co_url, gateway_url=gw_url, api_key="",
                        workers=[], client_email=localpool.CLIENT_EMAIL, owner_email=localpool.OWNER_EMAIL,
                        password=localpool.DEMO_PASSWORD)
        live.start_coordinator()
        live.start_gateway()
        demo = localpool.seed(co_url, N_WORKERS)
        live.api_key, live.workers = demo["api_key"], demo["workers"]
        live.start_worker(0)
        live.start_worker(1)
        live.wait_online(2)
        yield live
    except Exception:
        _dump_logs(tmp)
        raise
    finally:
        localpool.DATA_DIR = saved_data_dir
        for _, proc in pool.procs:  # a SIGSTOPped child cannot act on SIGTERM
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        pool.stop()


def _dump_logs(tmp: Path) -> None:
    for log in sorted((tmp / "logs").glob("*.log")):
        print(f"==== {log.name} ====\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def encoder():
    """The model run directly in the test process (ONNX fp32)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from worker.model import load_encoder

    return load_encoder("onnx")


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")
