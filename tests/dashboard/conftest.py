"""Browser tests for the dashboard: a real coordinator, the dashboard built once, headless Chromium.

The frontend is exported once (and reused while dashboard/ and rxconfig.py are unchanged); each run
starts the coordinator (temp SQLite), the Reflex backend (--env prod --backend-only) and a static server.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = ("admin@dashboard.test", "admin-dashboard-password-123")
CLIENT = ("client@dashboard.test", "client-password-123")
OWNER = ("owner@dashboard.test", "owner-password-123")
INTERNAL_TOKEN = "dashboard-test-internal-token"
TIMEOUT_MS = 30_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/dashboard" in str(item.fspath) and item.fspath.basename not in ("test_api.py", "test_metrics.py"):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(reason="/usr/bin/chromium is missing (apt-get install chromium)")
                )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(
    url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited: {log.read_text()[-3000:] if log else ''}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {log.read_text()[-3000:] if log else ''}")


def start_coordinator(tmp: Path) -> tuple[str, subprocess.Popen, Path]:
    """A real coordinator on a free port with its own SQLite file in `tmp`; returns (url, process, db)."""
    port = _free_port()
    db = tmp / "db.sqlite"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "JWT_SECRET": "dashboard-browser-tests-secret-0123456789abcdef",
        "ADMIN_EMAIL": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
        "SCHEDULER_ENABLED": "false",
        "AUDIT_RATE": "0",  # job counts on screen are asserted exactly; audits are tested elsewhere
        "ENVIRONMENT": "test",
        "COORDINATOR_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "RATE_LIMIT_LOGIN_PER_MINUTE": "1000",
        "PYTHONPATH": str(ROOT),
    }
    log = tmp / "coordinator.log"
    # cwd=tmp keeps the coordinator's .openmesh/ data out of the repository.
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "backend.coordinator.main:app", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/health", 60, proc, log)
    except RuntimeError:
        stop_process(proc)
        raise
    return url, proc, db


def _spawn(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_gateway(coordinator_url: str, tmp: Path) -> tuple[str, subprocess.Popen]:
    """A real gateway on a free port in front of `coordinator_url`."""
    port = _free_port()
    log = tmp / "gateway.log"
    proc = _spawn([sys.executable, "-m", "backend.cli", "gateway", "--port", str(port)],
                  {"COORDINATOR_URL": coordinator_url, "COORDINATOR_INTERNAL_TOKEN": INTERNAL_TOKEN,
                   "ENVIRONMENT": "test", "POLL_TIMEOUT_SECONDS": "30"}, tmp, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/health", 60, proc, log)
    except RuntimeError:
        stop_process(proc)
        raise
    return url, proc


def start_worker(coordinator_url: str, worker_id: int, key_file: Path, tmp: Path) -> subprocess.Popen:
    """A real worker process (ONNX backend, the packaged model) owned by OWNER."""
    return _spawn([sys.executable, "-m", "worker", "run", "--coordinator", coordinator_url,
                   "--worker-id", str(worker_id), "--key-file", str(key_file), "--backend", "onnx"],
                  {"OPENMESH_EMAIL": OWNER[0], "OPENMESH_PASSWORD": OWNER[1], "HF_HUB_OFFLINE": "1"},
                  tmp, tmp / f"worker-{worker_id}.log")


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_dashboard(coordinator_url: str, gateway_url: str, logs: Path) -> tuple[str, list[subprocess.Popen]]:
    """The exported frontend (built once) + the Reflex backend pointed at the coordinator and gateway."""
    sys.path.insert(0, str(ROOT))
    from dashboard import run

    frontend, backend = _free_port(), _free_port()
    procs = run.start_static(
        frontend_port=frontend,
        backend_port=backend,
        coordinator_url=coordinator_url,
        gateway_url=gateway_url,
        log_dir=logs,
    )
    try:
        _wait_http(f"http://127.0.0.1:{backend}/ping", 120, procs[0], logs / "backend.log")
        _wait_http(f"http://127.0.0.1:{frontend}/login", 30, procs[1], logs / "static.log")
    except RuntimeError:
        run.stop(procs)
        raise
    return f"http://127.0.0.1:{frontend}", procs


@pytest.fixture(scope="session")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc, _ = start_coordinator(tmp_path_factory.mktemp("coordinator"))
    try:
        yield url
    finally:
        stop_process(proc)


class Api:
    """Direct coordinator (and gateway) calls, to seed data and to check that the screen matches the API.

    The pool is real: besides two registered-but-offline workers, two worker processes run the model.
    """

    def __init__(self, base: str, tmp: Path):
        self.base = base
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.gateway, gw_proc = start_gateway(base, tmp)
        self.procs.append(gw_proc)

    def start_real_workers(self, n: int = 2) -> None:
        from worker.signing import generate_key, public_key_b64url, save_key

        for i in range(1, n + 1):
            key = generate_key()
            key_file = save_key(self.tmp / f"onnx-{i}.key", key, force=True)
            r = self.post(OWNER, "/workers/register", {
                "name": f"onnx-{i}", "region": "local", "public_key": public_key_b64url(key),
                "specs_json": {"estimated_latency_ms": 10, "max_concurrency": 16, "backend": "onnx"}})
            assert r.status_code == 201, r.text
            self.procs.append(start_worker(self.base, r.json()["id"], key_file, self.tmp))
        deadline = time.monotonic() + 120
        while httpx.get(self.base + "/ready").json().get("workers_online", 0) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("real workers did not come online: " + "; ".join(
                    p.read_text()[-500:] for p in self.tmp.glob("worker-*.log")))
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)

    def token(self, who: tuple[str, str]) -> str:
        r = httpx.post(self.base + "/auth/login", json={"email": who[0], "password": who[1]})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def get(self, who: tuple[str, str], path: str, **params) -> dict:
        r = httpx.get(self.base + path, params=params, headers={"Authorization": f"Bearer {self.token(who)}"})
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, who: tuple[str, str], path: str, body: dict | None = None) -> httpx.Response:
        return httpx.post(self.base + path, json=body, headers={"Authorization": f"Bearer {self.token(who)}"})


@pytest.fixture(scope="session")
def api(coordinator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The pool with a client (credited), a worker owner with four workers (two real), and demo jobs."""
    from nacl.signing import SigningKey

    a = Api(coordinator, tmp_path_factory.mktemp("pool"))
    for email, password in (CLIENT, OWNER):
        role = "client" if (email, password) == CLIENT else "worker_owner"
        r = httpx.post(
            coordinator + "/auth/register", json={"email": email, "password": password, "role": role}
        )
        assert r.status_code in (201, 409), r.text
    for name in ("gpu-alpha", "gpu-beta"):
        key = base64.urlsafe_b64encode(bytes(SigningKey.generate().verify_key)).decode().rstrip("=")
        r = a.post(
            OWNER,
            "/workers/register",
            {
                "name": name,
                "region": "sa-east",
                "public_key": key,
                "specs_json": {"estimated_latency_ms": 50, "backend": "torch", "dtype": "float32"},
            },
        )
        assert r.status_code in (201, 409), r.text
    client_id = a.get(CLIENT, "/me")["id"]
    a.start_real_workers()
    r = a.post(ADMIN, f"/admin/users/{client_id}/credit", {"amount": "25.5", "memo": "browser test credit"})
    assert r.status_code in (200, 201), r.text
    r = a.post(ADMIN, "/admin/jobs/enqueue-demo", {"count": 3})
    assert r.status_code in (200, 201), r.text
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture(scope="session")
def dashboard(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from dashboard import run

    url, procs = start_dashboard(api.base, api.gateway, tmp_path_factory.mktemp("dashboard"))
    try:
        yield url
    finally:
        run.stop(procs)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, dashboard):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.base = dashboard  # type: ignore[attr-defined]
    yield pg
    context.close()


def login(page, who: tuple[str, str], expect_path: str) -> None:
    page.goto(page.base + "/login")
    page.wait_for_selector("#hydrated", state="attached")
    page.fill("#email", who[0])
    page.fill("#password", who[1])
    page.click("#login-submit")
    page.wait_for_url(f"**{expect_path}", wait_until="commit")


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # let charts finish their first paint
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
