"""`openmesh worker keygen|register|run|bench`, also run as `python -m worker` or `python -m worker.cli`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker import config as cfg

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_REFUSED = 2


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# -- worker config file (next to the key) ---------------------------------------------------------


def read_worker_config(key_file: Path) -> dict[str, Any]:
    """The {worker_id, coordinator, name, ...} saved by `register`, or {}."""
    path = cfg.config_file_for(key_file)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_worker_config(key_file: Path, data: dict[str, Any]) -> Path:
    path = cfg.config_file_for(key_file)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".worker-config-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return path


# -- argument parsing -------------------------------------------------------------------------------


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key-file", type=Path, default=None, help="worker key (default ~/.openmesh/worker.key)")


def _add_account(p: argparse.ArgumentParser) -> None:
    p.add_argument("--coordinator", default=None, help="coordinator URL (env OPENMESH_COORDINATOR_URL)")
    p.add_argument("--email", default=None, help="worker-owner email (env OPENMESH_EMAIL)")
    p.add_argument("--password", default=None, help="password (env OPENMESH_PASSWORD; prefer the env var)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openmesh worker", description="OpenMesh Pool worker runtime")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("keygen", help="create an Ed25519 key and print its public key")
    _add_common(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")

    p = sub.add_parser("register", help="register this machine as a worker and print its id")
    _add_common(p)
    _add_account(p)
    p.add_argument("--name", required=True)
    p.add_argument("--region", default="local")
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=cfg.DEFAULT_BATCH_SIZE,
        help="assignments held at once (default: the batch size, 16)",
    )
    p.add_argument("--latency-ms", type=int, default=None, help="declared estimated_latency_ms")
    p.add_argument("--backend", choices=cfg.BACKENDS, default=None, help="declared backend (default: onnx)")

    p = sub.add_parser("run", help="heartbeat, poll, compute, sign and submit until stopped")
    _add_common(p)
    _add_account(p)
    p.add_argument("--worker-id", default=None, help="default: the id saved by `register` next to the key")
    p.add_argument(
        "--backend", choices=cfg.BACKENDS, default=None, help="default: onnx (env OPENMESH_WORKER_BACKEND)"
    )
    p.add_argument(
        "--batch-size", type=int, default=cfg.DEFAULT_BATCH_SIZE, help="max assignments per poll (1..64)"
    )
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (env OPENMESH_WORKER_THREADS)")
    p.add_argument(
        "--wait-seconds", type=float, default=cfg.DEFAULT_WAIT_SECONDS, help="long-poll wait (0..30)"
    )
    p.add_argument("--heartbeat-interval", type=float, default=cfg.DEFAULT_HEARTBEAT_INTERVAL)
    p.add_argument("--burst", action="store_true", help="exit when a poll comes back empty")
    p.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
    p.add_argument("--log-format", choices=("plain", "json"), default="plain")
    p.add_argument("--log-level", default="INFO")

    p = sub.add_parser("bench", help="measure encode latency (p50) and batch throughput per backend")
    p.add_argument("--backend", choices=cfg.BACKENDS, action="append", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=30)
    return parser


def _key_file(args: argparse.Namespace) -> Path:
    return (args.key_file or cfg.default_key_file()).expanduser()


def _credentials(args: argparse.Namespace) -> tuple[str, str]:
    env_email, env_password = cfg.env_credentials()
    email, password = args.email or env_email, args.password or env_password
    if not email or not password:
        raise SystemExit(
            _usage("--email and --password (or OPENMESH_EMAIL / OPENMESH_PASSWORD) are required")
        )
    return email, password


def _usage(message: str) -> int:
    _err(f"error: {message}")
    return EXIT_USAGE


# -- commands ---------------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from worker.signing import KeyFileError, generate_key, public_key_b64url, save_key

    key_file = _key_file(args)
    key = generate_key()
    try:
        save_key(key_file, key, force=args.force)
    except KeyFileError as exc:
        return _usage(str(exc))
    _err(f"key written to {key_file}")
    _out(public_key_b64url(key))
    return EXIT_OK


def cmd_register(args: argparse.Namespace) -> int:
    from worker.client import ConflictError, CoordinatorClient, CoordinatorError, CoordinatorUnavailable
    from worker.signing import KeyFileError, load_key, public_key_b64url

    key_file = _key_file(args)
    try:
        public_key = public_key_b64url(load_key(key_file))
    except KeyFileError as exc:
        return _usage(str(exc))
    email, password = _credentials(args)
    coordinator = args.coordinator or cfg.env_coordinator_url()
    specs: dict[str, Any] = {
        "max_concurrency": args.max_concurrency,
        "backend": args.backend or "onnx",
        "dtype": "fp32",
        "batch_size": args.max_concurrency,
    }
    if args.latency_ms is not None:
        specs["estimated_latency_ms"] = args.latency_ms
    worker: dict[str, Any] | None
    with CoordinatorClient(coordinator, email=email, password=password) as client:
        try:
            worker = client.register_worker(
                name=args.name, region=args.region, public_key=public_key, specs_json=specs
            )
        except ConflictError:
            # Re-registering the same machine (same name, same key) is idempotent: reuse its id.
            worker = next(
                (
                    w
                    for w in _safe_list(client)
                    if w.get("name") == args.name and str(w.get("public_key", "")).rstrip("=") == public_key
                ),
                None,
            )
            if worker is None:
                return _usage(f"a worker named {args.name!r} already exists with another key")
        except CoordinatorUnavailable as exc:
            _err(f"error: coordinator unreachable: {exc}")
            return EXIT_REFUSED
        except CoordinatorError as exc:
            _err(f"error: registration refused: {exc.status_code} {exc.detail}")
            return EXIT_REFUSED
    worker_id = worker["id"]
    write_worker_config(
        key_file,
        {
            "worker_id": worker_id,
            "coordinator": coordinator,
            "name": args.name,
            "region": args.region,
            "public_key": public_key,
        },
    )
    _out(str(worker_id))
    return EXIT_OK


def _safe_list(client: Any) -> list[dict[str, Any]]:
    try:
        return client.list_workers()
    except Exception:
        return []


def cmd_run(args: argparse.Namespace) -> int:
    from worker.client import CoordinatorClient
    from worker.logs import configure_logging
    from worker.model import load_encoder
    from worker.runner import RunnerConfig, run_worker
    from worker.signing import KeyFileError, load_key

    configure_logging(args.log_format, args.log_level)
    cfg.force_offline()
    key_file = _key_file(args)
    try:
        signing_key = load_key(key_file)
    except KeyFileError as exc:
        return _usage(str(exc))
    saved = read_worker_config(key_file)
    worker_id = args.worker_id or saved.get("worker_id")
    if worker_id is None:
        return _usage(
            "no --worker-id and no registered worker next to the key (run `openmesh worker register`)"
        )
    if isinstance(worker_id, str) and worker_id.isdigit():
        worker_id = int(worker_id)
    if not 1 <= args.batch_size <= 64:
        return _usage("--batch-size must be within 1..64")
    email, password = _credentials(args)
    coordinator = args.coordinator or saved.get("coordinator") or cfg.env_coordinator_url()
    encoder = load_encoder(args.backend, threads=args.threads or cfg.env_threads())
    config = RunnerConfig(
        worker_id=worker_id,
        batch_size=args.batch_size,
        wait_seconds=max(0.0, min(30.0, args.wait_seconds)),
        heartbeat_interval=args.heartbeat_interval,
        burst=args.burst,
        max_jobs=args.max_jobs,
    )
    with CoordinatorClient(coordinator, email=email, password=password) as client:
        runner = run_worker(client, encoder, signing_key, config)
    return runner.exit_code


def cmd_bench(args: argparse.Namespace) -> int:
    from worker.bench import run_bench

    run_bench(tuple(args.backend or cfg.BACKENDS), threads=args.threads, repeats=args.repeats)
    return EXIT_OK


COMMANDS = {"keygen": cmd_keygen, "register": cmd_register, "run": cmd_run, "bench": cmd_bench}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `openmesh worker ...`; returns the process exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        return COMMANDS[args.command](args)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def run_command(
    coordinator: str,
    *,
    worker_id: Any | None = None,
    key_file: Path | str | None = None,
    backend: str | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """argv to start a worker in a subprocess: `[python, -m, worker, run, ...]`.

    Pass the account as OPENMESH_EMAIL / OPENMESH_PASSWORD in the child's environment (not argv,
    which other users can read in the process list).
    """
    argv = [sys.executable, "-m", "worker", "run", "--coordinator", coordinator]
    if worker_id is not None:
        argv += ["--worker-id", str(worker_id)]
    if key_file is not None:
        argv += ["--key-file", str(key_file)]
    if backend is not None:
        argv += ["--backend", backend]
    if batch_size is not None:
        argv += ["--batch-size", str(batch_size)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    return argv + list(extra)


if __name__ == "__main__":
    raise SystemExit(main())
