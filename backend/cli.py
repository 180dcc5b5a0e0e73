"""`openmesh`: run the coordinator, the gateway, a worker, the dashboard, or the whole pool (`up`)."""

from __future__ import annotations

import argparse
import os
import sys


def _serve(app: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    from backend.core.logging import setup_logging

    setup_logging(app.split(".")[1])
    uvicorn.run(app, host=host, port=port, workers=workers, log_config=None, proxy_headers=False, access_log=False,
                timeout_graceful_shutdown=5)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The worker has its own parser (keygen | register | run); hand it everything after "worker".
    if argv and argv[0] == "worker":
        from worker.cli import main as worker_main

        raise SystemExit(worker_main(argv[1:]))

    parser = argparse.ArgumentParser(prog="openmesh", description="OpenMesh Pool: verified embedding and rerank inference.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, port in (("coordinator", 8001), ("gateway", 8002)):
        p = sub.add_parser(name, help=f"run the {name} (HTTP API on port {port})")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port)
        p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    sub.add_parser("migrate", help="apply the database migrations (alembic upgrade head) and exit")
    sub.add_parser("worker", help="worker machine: keygen | register | run (see `openmesh worker --help`)")
    up = sub.add_parser("up", help="start the whole pool locally with demo users and print a walkthrough")
    up.add_argument("--no-dashboard", action="store_true", help="skip the Reflex dashboard")
    up.add_argument("--workers", type=int, default=2, help="local workers to start (default 2)")
    up.add_argument("--backend", default=os.environ.get("OPENMESH_WORKER_BACKEND", "onnx"),
                    choices=["onnx", "torch"], help="worker runtime")
    up.add_argument("--exit-after-ready", action="store_true", help=argparse.SUPPRESS)
    dash = sub.add_parser("dashboard", help="run the Reflex dashboard against a coordinator and a gateway")
    dash.add_argument("--port", type=int, default=3000, help="page port (default 3000)")
    dash.add_argument("--backend-port", type=int, default=8000, help="Reflex state server port (default 8000)")
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on and that browsers use")
    dash.add_argument("--coordinator", default=None, help="coordinator URL (env COORDINATOR_URL, default :8001)")
    dash.add_argument("--gateway", default=None, help="gateway URL (env GATEWAY_URL, default :8002)")
    dash.add_argument("--dev", action="store_true", help="Reflex dev mode with hot reload (for dashboard work)")
    args = parser.parse_args(argv)

    if args.command == "coordinator":
        _serve("backend.coordinator.main:app", args.host, args.port, args.workers)
    elif args.command == "gateway":
        _serve("backend.gateway.main:app", args.host, args.port, args.workers)
    elif args.command == "migrate":
        from backend.core.db import get_engine
        from backend.core.logging import setup_logging
        from backend.core.migrate import current_revision, upgrade

        setup_logging("migrate")
        engine = get_engine()
        upgrade(engine)
        with engine.connect() as conn:
            print(f"database at revision {current_revision(conn)}")  # noqa: T201
    elif args.command == "up":
        from backend.localpool import run_pool

        raise SystemExit(run_pool(dashboard=not args.no_dashboard, n_workers=args.workers, backend=args.backend,
                                  exit_after_ready=args.exit_after_ready))
    elif args.command == "dashboard":
        from dashboard.run import run_dashboard

        raise SystemExit(run_dashboard(port=args.port, backend_port=args.backend_port, host=args.host,
                                       coordinator_url=args.coordinator, gateway_url=args.gateway,
                                       mode="dev" if args.dev else "static"))


if __name__ == "__main__":
    main()
