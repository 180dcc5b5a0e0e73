"""`openmesh up`: the whole pool on one machine, with demo users and a walkthrough.

Starts the coordinator, the gateway, N workers (the real model) and the dashboard as child
processes in their own process groups, seeds demo accounts over the public API (so it exercises the
same rules as any user), prints what to paste, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.core.config import DATA_DIR, get_settings

DEMO_PASSWORD = "openmesh-demo-123"
CLIENT_EMAIL = "client@openmesh.local"
OWNER_EMAIL = "owner@openmesh.local"


class Pool:
    def __init__(self, logs: Path | None = None) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.logs = logs or DATA_DIR / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it until exit
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                start_new_session=True)
        self.procs.append((name, proc))
        print(f"  started {name:<12} pid {proc.pid:<7} log {log.name}")
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with code {proc.returncode}; last log lines:\n{tail}")

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for _, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _wait_http(pool: Pool, url: str, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool.check_alive()
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s")


def _login(c: httpx.Client, email: str, password: str) -> dict[str, str]:
    r = c.post("/auth/login", json={"email": email, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _user(c: httpx.Client, email: str, role: str) -> dict[str, str]:
    r = c.post("/auth/register", json={"email": email, "password": DEMO_PASSWORD, "role": role})
    if r.status_code not in (201, 409):
        r.raise_for_status()
    return _login(c, email, DEMO_PASSWORD)


def seed(coordinator_url: str, n_workers: int, *, max_concurrency: int = 16,
         keys_dir: Path | None = None) -> dict:
    """Demo client (balance + a fresh API key) and a worker owner with n registered workers."""
    s = get_settings()
    keys_dir = keys_dir or DATA_DIR / "workers"
    keys_dir.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=coordinator_url, timeout=30) as c:
        admin = _login(c, s.admin_email, s.admin_password)
        client = _user(c, CLIENT_EMAIL, "client")
        owner = _user(c, OWNER_EMAIL, "worker_owner")
        client_id = c.get("/me", headers=client).json()["id"]
        # One demo credit per client account, however often `up` runs (idempotency key).
        c.post(f"/admin/users/{client_id}/credit", headers=admin, json={
            "amount": str(s.demo_client_credit), "memo": "demo credit", "idempotency_key": f"demo-credit:{client_id}"})
        api_key = c.post("/auth/api-keys", headers=client, json={"name": f"demo-{int(time.time())}"}).json()["key"]
        existing = {w["name"]: w for w in c.get("/workers", headers=owner).json()["workers"]}
        workers = []
        from worker.signing import generate_key, load_key, public_key_b64url, save_key

        for i in range(1, n_workers + 1):
            name = f"local-worker-{i}"
            key_file = keys_dir / f"{name}.key"
            if not key_file.exists():
                save_key(key_file, generate_key())
            public_key = public_key_b64url(load_key(key_file))
            if name in existing and existing[name]["public_key"] == public_key:
                worker_id = existing[name]["id"]
            else:
                if name in existing:  # the key file was lost: register under a fresh name
                    name = f"{name}-{int(time.time())}"
                r = c.post("/workers/register", headers=owner, json={
                    "name": name, "region": "local", "public_key": public_key,
                    "specs_json": {"estimated_latency_ms": 20, "max_concurrency": max_concurrency}})
                r.raise_for_status()
                worker_id = r.json()["id"]
            workers.append({"id": worker_id, "name": name, "key_file": str(key_file)})
    return {"api_key": api_key, "workers": workers}


def _walkthrough(s, demo: dict, dashboard: bool) -> str:
    gw, co = s.gateway_url, s.coordinator_url
    key = demo["api_key"]
    lines = [
        "", "OpenMesh Pool is running.", "",
        f"  Coordinator  {co}   (Swagger UI: {co}/docs)",
        f"  Gateway      {gw}   (Swagger UI: {gw}/docs)",
    ]
    if dashboard:
        lines.append("  Dashboard    http://127.0.0.1:3000")
    lines += [
        "", "Accounts:",
        f"  admin         {s.admin_email} / {s.admin_password}",
        f"  client        {CLIENT_EMAIL} / {DEMO_PASSWORD}   (balance {s.demo_client_credit} TOK)",
        f"  worker owner  {OWNER_EMAIL} / {DEMO_PASSWORD}   (workers: "
        + ", ".join(w["name"] for w in demo["workers"]) + ")",
        "", f"Client API key (shown once): {key}", "",
        "Try it:",
        f"  curl -s -X POST '{gw}/v1/embed' -H 'Content-Type: application/json' -H 'X-API-Key: {key}' \\",
        "       -d '{\"text\":\"OpenMesh é uma rede distribuída.\"}'",
        f"  curl -s -X POST '{gw}/v1/rank' -H 'Content-Type: application/json' -H 'X-API-Key: {key}' \\",
        "       -d '{\"query\":\"infra distribuída\",\"texts\":[\"OpenMesh\",\"banco relacional\",\"fila assíncrona\"]}'",
        f"  curl -s '{co}/health'; curl -s '{gw}/health'",
        "", f"Logs in {DATA_DIR / 'logs'}. Press Ctrl-C to stop everything.", "",
    ]
    return "\n".join(lines)


def run_pool(*, dashboard: bool = True, n_workers: int = 2, backend: str = "onnx",
             exit_after_ready: bool = False) -> int:
    s = get_settings()
    py = sys.executable
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    pool = Pool()
    # SIGTERM (kill, a service manager) and SIGINT stop the children the same way as Ctrl-C; a shell
    # that starts us in the background leaves SIGINT ignored, so both handlers are set explicitly.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    print("Starting OpenMesh Pool (data in .openmesh/) ...")
    try:
        co_port = s.coordinator_url.rsplit(":", 1)[1].split("/")[0]
        gw_port = s.gateway_url.rsplit(":", 1)[1].split("/")[0]
        pool.start("coordinator", [py, "-m", "backend.cli", "coordinator", "--port", co_port], env)
        _wait_http(pool, f"{s.coordinator_url}/health", "coordinator")
        pool.start("gateway", [py, "-m", "backend.cli", "gateway", "--port", gw_port], env)
        demo = seed(s.coordinator_url, n_workers)
        for w in demo["workers"]:
            pool.start(w["name"], [py, "-m", "worker", "run", "--coordinator", s.coordinator_url,
                                   "--worker-id", str(w["id"]), "--key-file", w["key_file"],
                                   "--backend", backend],
                       {**env, "OPENMESH_EMAIL": OWNER_EMAIL, "OPENMESH_PASSWORD": DEMO_PASSWORD})
        if dashboard:
            pool.start("dashboard", [py, "-m", "backend.cli", "dashboard"], env)
        _wait_http(pool, f"{s.gateway_url}/health", "gateway")
        _wait_workers_online(pool, s.coordinator_url, len(demo["workers"]))
        if dashboard:
            print("  waiting for the dashboard (the first start installs its frontend; about a minute) ...")
            _wait_http(pool, "http://127.0.0.1:3000", "dashboard", timeout=600)
        print(_walkthrough(s, demo, dashboard))
        if exit_after_ready:
            return 0
        while True:
            pool.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping ...")
        return 0
    except RuntimeError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    finally:
        pool.stop()
        print("Stopped.")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _wait_workers_online(pool: Pool, coordinator_url: str, n: int, timeout: float = 180) -> None:
    print(f"  waiting for {n} workers to load the model and come online ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool.check_alive()
        try:
            ready = httpx.get(f"{coordinator_url}/ready", timeout=5).json()
            if ready.get("workers_online", 0) >= n:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"workers did not come online within {timeout:.0f} s (see .openmesh/logs)")


if __name__ == "__main__":
    raise SystemExit(run_pool())
