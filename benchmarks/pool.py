"""A throw-away pool for the benchmark: coordinator, gateway and real workers as subprocesses.

Same processes and seeding as `openmesh up` (backend/localpool.py: `Pool`, `seed`, the readiness
waits), but on free ports, with a temporary SQLite database and data directory, rate limits lifted
(the benchmark is one client sending thousands of requests) and no dashboard.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import httpx

from backend import localpool

DEMO_CREDIT = "100000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(db_url: str, co_url: str, gw_url: str) -> dict[str, str]:
    """Settings shared by the bench process (for `seed`) and its children."""
    return {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
        "ENVIRONMENT": "development",
        "DATABASE_URL": db_url, "REDIS_URL": "",
        "COORDINATOR_URL": co_url, "GATEWAY_URL": gw_url,
        "JWT_SECRET": "bench-" + "x" * 40,
        "ADMIN_EMAIL": "admin@bench.local", "ADMIN_PASSWORD": "bench-admin-password-123",
        "COORDINATOR_INTERNAL_TOKEN": "bench-internal-token",
        "RATE_LIMIT_PER_MINUTE_API_KEY": "100000000", "RATE_LIMIT_PER_MINUTE_IP": "100000000",
        "RATE_LIMIT_LOGIN_PER_MINUTE": "1000",
        "DEMO_CLIENT_CREDIT": DEMO_CREDIT,
    }


def apply_env(env: dict[str, str]) -> None:
    """Make this process's settings match the children's (seed() reads get_settings())."""
    from backend.core.config import get_settings

    for k, v in env.items():
        if v == "":
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


class BenchPool:
    def __init__(self, data: Path, *, n_workers: int = 2, backend: str = "onnx", threads: int | None = None,
                 batch_size: int = 32, max_concurrency: int = 64) -> None:
        self.data = data
        self.n_workers = n_workers
        self.backend = backend
        self.threads = threads
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.co_port = free_port()
        self.gw_port = free_port()
        while self.gw_port == self.co_port:
            self.gw_port = free_port()
        self.co_url = f"http://127.0.0.1:{self.co_port}"
        self.gw_url = f"http://127.0.0.1:{self.gw_port}"
        self.db_path = data / "bench.db"
        self.env = base_env(f"sqlite:///{self.db_path}", self.co_url, self.gw_url)
        self.pool = localpool.Pool(logs=data / "logs")
        self.coordinator = None
        self.demo: dict = {}

    def _child_env(self) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if v != ""}

    def _start_coordinator(self, extra: dict[str, str] | None = None) -> None:
        env = {**self._child_env(), **(extra or {})}
        if "REDIS_URL" not in env:
            env["REDIS_URL"] = ""  # never inherit one from the caller's shell
        self.coordinator = self.pool.start("coordinator", [sys.executable, "-m", "backend.cli", "coordinator",
                                                           "--port", str(self.co_port)], env)
        localpool._wait_http(self.pool, f"{self.co_url}/health", "coordinator")

    def start(self) -> None:
        apply_env(self.env)
        py = sys.executable
        self._start_coordinator()
        self.pool.start("gateway", [py, "-m", "backend.cli", "gateway", "--port", str(self.gw_port)],
                        {**self._child_env(), "REDIS_URL": ""})
        self.demo = localpool.seed(self.co_url, self.n_workers, max_concurrency=self.max_concurrency,
                                   keys_dir=self.data / "workers")
        for w in self.demo["workers"]:
            cmd = [py, "-m", "worker", "run", "--coordinator", self.co_url, "--worker-id", str(w["id"]),
                   "--key-file", w["key_file"], "--backend", self.backend, "--batch-size", str(self.batch_size),
                   "--log-level", os.environ.get("BENCH_WORKER_LOG", "WARNING")]
            if self.threads:
                cmd += ["--threads", str(self.threads)]
            self.pool.start(w["name"], cmd, {**self._child_env(), "OPENMESH_EMAIL": localpool.OWNER_EMAIL,
                                            "OPENMESH_PASSWORD": localpool.DEMO_PASSWORD})
        localpool._wait_http(self.pool, f"{self.gw_url}/health", "gateway")
        localpool._wait_workers_online(self.pool, self.co_url, self.n_workers)

    def restart_coordinator(self, extra: dict[str, str]) -> None:
        """Same database, new settings (e.g. ADAPTIVE_REPLICATION=true); waits for the workers to return."""
        import signal

        assert self.coordinator is not None
        os.killpg(self.coordinator.pid, signal.SIGTERM)
        self.coordinator.wait(15)
        self.pool.procs = [(n, p) for n, p in self.pool.procs if p is not self.coordinator]
        self._start_coordinator(extra)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.pool.check_alive()
            try:
                if httpx.get(f"{self.co_url}/ready", timeout=5).json().get("workers_online", 0) >= self.n_workers:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("workers did not come back after the coordinator restart")

    def log_tails(self, chars: int = 1500) -> str:
        out = []
        for name, proc in self.pool.procs:
            path = self.pool.logs / f"{name}.log"
            if path.exists():
                out.append(f"--- {name} (exit {proc.poll()}) ---\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    def stop(self) -> None:
        self.pool.stop()
