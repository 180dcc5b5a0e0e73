"""The coordinator alone: heartbeats/s and submits/s on SQLite and on PostgreSQL.

One coordinator process (as `openmesh coordinator` runs it) on a fresh database; the load comes
from `loadgen` over keep-alive connections, authenticated as a worker owner exactly like real
workers. Submits are real signed results of demo embed jobs (two replicas each, so every second
submit also verifies the job and moves reputation).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from backend import localpool
from benchmarks.loadgen import build_request, hammer
from benchmarks.pool import apply_env, base_env, free_port

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as c:
        c.execute(sql)


def pg_available() -> str | None:
    """None when reachable, else the reason."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as c:
            c.execute("select 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means skip, with the reason
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _setup(co: str, n_workers: int) -> tuple[str, list[dict]]:  # noqa: D103
    from worker.signing import generate_key, public_key_b64url

    with httpx.Client(base_url=co, timeout=30) as c:
        owner = localpool._user(c, f"owner-{uuid.uuid4().hex[:6]}@bench.local", "worker_owner")
        workers = []
        for i in range(n_workers):
            key = generate_key()
            r = c.post("/workers/register", headers=owner, json={
                "name": f"bench-{i}-{uuid.uuid4().hex[:6]}", "region": "local", "public_key": public_key_b64url(key),
                "specs_json": {"estimated_latency_ms": 10, "max_concurrency": 256}})
            r.raise_for_status()
            workers.append({"id": r.json()["id"], "key": key})
            c.post("/workers/heartbeat", headers=owner, json={"worker_id": workers[-1]["id"]}).raise_for_status()
    return owner["Authorization"], workers


def _start(pool, label: str, env: dict[str, str]) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pool.start(label, [sys.executable, "-m", "backend.cli", "coordinator", "--port", str(port)], dict(env))
    localpool._wait_http(pool, f"{url}/health", label)
    return url


def _lease_all(co: str, auth: dict, admin: dict, workers: list[dict], jobs: int) -> list[tuple[dict, dict]]:
    with httpx.Client(base_url=co, timeout=60) as c:
        made = 0
        while made < jobs:
            r = c.post("/admin/jobs/enqueue-demo", headers=admin, json={"count": min(100, jobs - made),
                                                                         "job_type": "embed"})
            r.raise_for_status()
            made += r.json()["count"]
        leased = []
        for w in workers:
            while True:
                r = c.post("/jobs/poll-batch", headers=auth, json={"worker_id": w["id"], "max_items": 64,
                                                                   "wait_seconds": 0})
                r.raise_for_status()
                items = r.json()["assignments"]
                if not items:
                    break
                leased += [(w, a) for a in items]
    return leased


def _signed(w: dict, a: dict, output: dict, batch_size: int) -> dict:
    from worker.signing import sign_submission

    out_hash, sig = sign_submission(w["key"], a["assignment_id"], a["nonce"], output)
    return {"assignment_id": a["assignment_id"], "nonce": a["nonce"], "signature": sig, "output": output,
            "output_hash": out_hash, "metrics_json": {"compute_ms": 1.0, "backend": "bench", "batch_size": batch_size}}


def measure_db(label: str, db_url: str, data: Path, *, hb_seconds: float, jobs: int, concurrency: int,
               batch: int = 32) -> dict:
    env = base_env(db_url, "http://127.0.0.1:1", f"http://127.0.0.1:{free_port()}")
    # Every heartbeat writes here (the worst case: as many workers as heartbeats per second); the
    # coalesced figure below comes from a second process with the default write interval.
    env["HEARTBEAT_WRITE_INTERVAL_SECONDS"] = "0"
    apply_env(env)
    pool = localpool.Pool(logs=data / "logs")
    try:
        co = _start(pool, f"coordinator-{label}", env)
        n_workers = max(2, math.ceil(jobs * 2 / 256))
        bearer, workers = _setup(co, n_workers)
        auth = {"Authorization": bearer}
        with httpx.Client(base_url=co, timeout=60) as c:
            admin = localpool._login(c, env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])

        # Heartbeats: every worker in turn, over `concurrency` connections.
        def heartbeats(url: str) -> dict:
            reqs = [build_request(url, "/workers/heartbeat", {"worker_id": w["id"]}, auth) for w in workers]
            hammer(url, reqs, concurrency=concurrency, duration=1.0, cycle=True)  # warm-up
            return hammer(url, reqs, concurrency=concurrency, duration=hb_seconds, cycle=True)

        hb = heartbeats(co)
        print(f"    {label}: {hb['per_s']:.0f} heartbeats/s, each one written ({hb['ok']} in {hb['elapsed_s']} s)",
              flush=True)
        co2 = _start(pool, f"coordinator-{label}-default", {k: v for k, v in env.items()
                                                            if k != "HEARTBEAT_WRITE_INTERVAL_SECONDS"})
        hb_default = heartbeats(co2)
        print(f"    {label}: {hb_default['per_s']:.0f} heartbeats/s with the default 1 s write interval "
              f"({n_workers} workers)", flush=True)

        # Submits: demo embed jobs (2 replicas), leased by their workers, then every result at once,
        # one request per result; then as many again in batches of `batch` (/jobs/submit-batch).
        output = {"embedding": [1.0 / math.sqrt(384)] * 384}
        leased = _lease_all(co, auth, admin, workers, jobs)
        subs = [build_request(co, "/jobs/submit", {"worker_id": w["id"], **_signed(w, a, output, 1)}, auth)
                for w, a in leased]
        sb = hammer(co, subs, concurrency=concurrency)
        print(f"    {label}: {sb['per_s']:.0f} submits/s ({sb['ok']} of {len(subs)} in {sb['elapsed_s']} s)", flush=True)

        leased = _lease_all(co, auth, admin, workers, jobs)
        by_worker: dict[int, list[dict]] = {}
        for w, a in leased:
            by_worker.setdefault(w["id"], []).append(_signed(w, a, output, batch))
        reqs = []
        for wid, items in by_worker.items():
            for i in range(0, len(items), batch):
                reqs.append(build_request(co, "/jobs/submit-batch", {"worker_id": wid, "results": items[i:i + batch]},
                                          auth))
        t0 = time.perf_counter()
        bb = hammer(co, reqs, concurrency=min(concurrency, len(reqs)))
        results_per_s = round(len(leased) / max(time.perf_counter() - t0, 1e-9), 1)
        bb["results_per_s"] = results_per_s
        print(f"    {label}: {results_per_s:.0f} results/s in batches of {batch} ({bb['ok']} of {len(reqs)} "
              f"requests in {bb['elapsed_s']} s)", flush=True)
        return {"database": label, "heartbeats": hb, "heartbeats_default_interval": hb_default, "submits": sb,
                "batch_submits": bb, "workers": n_workers, "jobs": jobs}
    finally:
        pool.stop()


def run(*, hb_seconds: float = 5.0, jobs: int = 600, concurrency: int = 16) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="omb-sqlite-") as tmp:
        out["sqlite"] = measure_db("sqlite", f"sqlite:///{Path(tmp) / 'coord.db'}", Path(tmp),
                                   hb_seconds=hb_seconds, jobs=jobs, concurrency=concurrency)
    reason = pg_available()
    if reason is not None:
        msg = f"PostgreSQL at 127.0.0.1:5432 unreachable ({reason}); skipped"
        print(f"    postgresql: {msg}", flush=True)
        out["postgresql"] = {"skipped": msg}
        return out
    db = f"openmesh_bench_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{db}"')
    try:
        with tempfile.TemporaryDirectory(prefix="omb-pg-") as tmp:
            out["postgresql"] = measure_db("postgresql", PG_URL.format(db=db), Path(tmp),
                                           hb_seconds=hb_seconds, jobs=jobs, concurrency=concurrency)
    finally:
        time.sleep(0.5)
        _pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
