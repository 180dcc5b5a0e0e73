"""`make bench`: the bare model and the pool, side by side, in one run on this machine.

1. bare model (no pool): single-text latency p50/p99 and batched throughput (batches of 32) for
   ONNX Runtime fp32 and sentence-transformers (PyTorch), each in a fresh process;
2. the pool (coordinator + gateway + 2 real workers on a temporary SQLite DB): end-to-end latency of
   one `/v1/embed` request at a time, and throughput at 8 and 32 concurrent clients;
3. the same 32-client throughput with ADAPTIVE_REPLICATION=true (coordinator restarted on the
   same database, so the workers keep the reputation they earned);
4. gateway + coordinator overhead per request: end-to-end minus the worker's own compute_ms
   (metrics_json of the verifying submissions, read from the pool's database);
5. the coordinator alone: heartbeats/s and submits/s on SQLite and PostgreSQL.

Prints a table (targets beside the figures, never asserted) and writes benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.loadgen import build_request, hammer
from benchmarks.stats import pct, summary
from benchmarks.texts import corpus

RESULTS = Path(__file__).parent / "results"
TARGETS = {"e2e_p50_ratio_max": 1.5, "throughput32_ratio_min": 0.45, "throughput32_adaptive_ratio_min": 0.8,
           "overhead_p50_ms_max": 5.0, "pg_heartbeats_per_s_min": 2000}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- 1. bare model ----------------------------------------------------------------------------


def bare(backend: str, singles: int, batches: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bare", "--backend", backend, "--singles", str(singles),
                          "--batches", str(batches)], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"bare {backend} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- 2-4. the pool ----------------------------------------------------------------------------


def embed_requests(gw: str, api_key: str, texts: list[str]) -> list[bytes]:
    return [build_request(gw, "/v1/embed", {"text": t}, {"X-API-Key": api_key}) for t in texts]


def sequential(gw: str, reqs: list[bytes]) -> tuple[list[float], list[int]]:
    samples: list[tuple[float, int, bytes]] = []
    r = hammer(gw, reqs, concurrency=1, samples=samples)
    if r["ok"] != len(reqs):
        raise RuntimeError(f"pool e2e: {r['ok']} of {len(reqs)} succeeded ({r['status_codes']}, {r['errors']})")
    return [s[0] for s in samples], [json.loads(s[2])["job_id"] for s in samples]


def throughput(gw: str, reqs: list[bytes], clients: int, seconds: float) -> dict:
    hammer(gw, reqs[: clients * 2], concurrency=clients)  # warm-up: connections, worker batches
    samples: list[tuple[float, int, bytes]] = []
    r = hammer(gw, reqs, concurrency=clients, duration=seconds, cycle=True, samples=samples)
    lat = [s[0] for s in samples if s[1] == 200]
    return {"clients": clients, "texts_per_s": r["per_s"], "requests": r["requests"], "ok": r["ok"],
            "elapsed_s": r["elapsed_s"], "status_codes": r["status_codes"], "latency": summary(lat),
            "errors": r["errors"]}


def compute_ms_by_job(db: Path, job_ids: list[int]) -> dict[int, float]:
    """Worker-reported compute time on the critical path: the slowest verified replica of each job."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            f"SELECT job_id, metrics_json FROM assignment WHERE status = 'accepted' AND job_id IN "
            f"({','.join('?' * len(job_ids))})", job_ids).fetchall()
    finally:
        con.close()
    out: dict[int, float] = {}
    for job_id, metrics in rows:
        ms = float((json.loads(metrics) if isinstance(metrics, str) else metrics or {}).get("compute_ms") or 0.0)
        out[job_id] = max(out.get(job_id, 0.0), ms)
    return out


def replication_mix(db: Path, since_job_id: int) -> dict:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT replicas_needed, is_audit, count(*) FROM job WHERE id > ? GROUP BY 1, 2",
                           (since_job_id,)).fetchall()
    finally:
        con.close()
    mix = {"client_single": 0, "client_replicated": 0, "audits": 0}
    for replicas, is_audit, n in rows:
        if is_audit:
            mix["audits"] += n
        elif replicas == 1:
            mix["client_single"] += n
        else:
            mix["client_replicated"] += n
    return mix


def max_job_id(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT coalesce(max(id), 0) FROM job").fetchone()[0]
    finally:
        con.close()


def worker_reputations(db: Path) -> list[float]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT reputation FROM worker ORDER BY id")]
    finally:
        con.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_snapshot(pool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {name: cpu_seconds(proc.pid) for name, proc in pool.pool.procs if proc.poll() is None}


def cpu_per_request(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds each process spent per request: robust to a busy machine, unlike wall time."""
    out = {name: round((after[name] - before.get(name, 0.0)) * 1000.0 / n, 2) for name in after}
    out["total"] = round(sum(out.values()), 2)
    return out


def pool_section(args: argparse.Namespace, texts: list[str]) -> dict:
    from benchmarks.pool import BenchPool

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="omb-pool-") as tmp:
        pool = BenchPool(Path(tmp), n_workers=2, backend="onnx", threads=args.worker_threads,
                         batch_size=args.worker_batch)
        try:
            log("pool: starting coordinator, gateway and 2 ONNX workers (temporary SQLite DB) ...")
            t0 = time.perf_counter()
            pool.start()
            out["startup_s"] = round(time.perf_counter() - t0, 1)
            reqs = embed_requests(pool.gw_url, pool.demo["api_key"], texts)
            sequential(pool.gw_url, reqs[:20])  # warm-up
            log(f"pool: e2e latency, {args.e2e} requests one at a time ...")
            cpu0 = cpu_snapshot(pool)
            lat, job_ids = sequential(pool.gw_url, reqs[: args.e2e])
            out["e2e"] = summary(lat)
            out["e2e"]["cpu_ms_per_request"] = cpu_per_request(cpu0, cpu_snapshot(pool), len(lat))
            compute = compute_ms_by_job(pool.db_path, job_ids)
            overhead = [ms - compute[j] for ms, j in zip(lat, job_ids, strict=True) if j in compute]
            out["overhead"] = {**summary(overhead), "worker_compute_p50_ms": round(pct(list(compute.values()), 50), 3),
                               "method": "e2e minus the slowest verified replica's compute_ms (metrics_json)"}
            log(f"      p50 {out['e2e']['p50_ms']:.1f} ms, p99 {out['e2e']['p99_ms']:.1f} ms, "
                f"overhead p50 {out['overhead']['p50_ms']:.1f} ms; CPU ms/request "
                f"{out['e2e']['cpu_ms_per_request']}")
            for clients in (8, 32):
                log(f"pool: throughput with {clients} concurrent clients for {args.seconds:.0f} s ...")
                out[f"throughput_{clients}"] = throughput(pool.gw_url, reqs, clients, args.seconds)
                log(f"      {out[f'throughput_{clients}']['texts_per_s']:.1f} texts/s")
            out["reputation_before_adaptive"] = worker_reputations(pool.db_path)
            log("pool: restarting the coordinator with ADAPTIVE_REPLICATION=true (same database) ...")
            pool.restart_coordinator({"ADAPTIVE_REPLICATION": "true"})
            sequential(pool.gw_url, reqs[:10])  # the workers reconnect
            since = max_job_id(pool.db_path)
            log(f"pool: adaptive replication, 32 concurrent clients for {args.seconds:.0f} s ...")
            out["throughput_32_adaptive"] = throughput(pool.gw_url, reqs, 32, args.seconds)
            out["throughput_32_adaptive"]["jobs"] = replication_mix(pool.db_path, since)
            log(f"      {out['throughput_32_adaptive']['texts_per_s']:.1f} texts/s "
                f"({out['throughput_32_adaptive']['jobs']})")
        except BaseException:
            print(pool.log_tails(), file=sys.stderr)
            raise
        finally:
            pool.stop()
    return out


# -- table ------------------------------------------------------------------------------------


def ratios(res: dict) -> dict:
    b = res["bare"][res["bare_fastest"]]
    p = res["pool"]
    r = {"e2e_p50": p["e2e"]["p50_ms"] / b["single"]["p50_ms"], "e2e_p99": p["e2e"]["p99_ms"] / b["single"]["p99_ms"],
         "throughput_8": p["throughput_8"]["texts_per_s"] / b["batched"]["texts_per_s"],
         "throughput_32": p["throughput_32"]["texts_per_s"] / b["batched"]["texts_per_s"],
         "throughput_32_adaptive": p["throughput_32_adaptive"]["texts_per_s"] / b["batched"]["texts_per_s"]}
    return {k: round(v, 3) for k, v in r.items()}


def table(res: dict) -> str:
    rows: list[tuple[str, str, str]] = []
    for name, b in res["bare"].items():
        rows.append((f"bare {name} single-text latency p50 / p99",
                     f"{b['single']['p50_ms']:.1f} / {b['single']['p99_ms']:.1f} ms", ""))
        rows.append((f"bare {name} batched throughput (batch 32)", f"{b['batched']['texts_per_s']:.0f} texts/s", ""))
    p, r, t = res["pool"], res["ratios"], TARGETS
    fb = res["bare_fastest"]
    rows += [
        ("pool e2e latency p50 / p99 (1 client)", f"{p['e2e']['p50_ms']:.1f} / {p['e2e']['p99_ms']:.1f} ms", ""),
        (f"  ratio pool/bare {fb} p50 / p99", f"{r['e2e_p50']:.2f}x / {r['e2e_p99']:.2f}x",
         f"p50 <= {t['e2e_p50_ratio_max']}x"),
        ("pool throughput, 8 clients", f"{p['throughput_8']['texts_per_s']:.0f} texts/s  ({r['throughput_8']:.2f}x)",
         ""),
        ("pool throughput, 32 clients", f"{p['throughput_32']['texts_per_s']:.0f} texts/s  ({r['throughput_32']:.2f}x)",
         f">= {t['throughput32_ratio_min']}x"),
        ("pool throughput, 32 clients, adaptive repl.",
         f"{p['throughput_32_adaptive']['texts_per_s']:.0f} texts/s  ({r['throughput_32_adaptive']:.2f}x)",
         f">= {t['throughput32_adaptive_ratio_min']}x"),
        ("gateway+coordinator overhead p50 (e2e - compute)", f"{p['overhead']['p50_ms']:.1f} ms",
         f"<= {t['overhead_p50_ms_max']:.0f} ms"),
    ]
    cpu = p["e2e"].get("cpu_ms_per_request")
    if cpu:
        bare_cpu = res["bare"][fb]["single"].get("cpu_ms")
        workers = sum(v for k, v in cpu.items() if k.startswith("local-worker"))
        rows.append(("CPU ms per request: coordinator / gateway / workers",
                     f"{cpu.get('coordinator', 0):.1f} / {cpu.get('gateway', 0):.1f} / {workers:.1f}",
                     f"(bare {fb}: {bare_cpu:.1f} per text)" if bare_cpu else ""))
    for db in ("sqlite", "postgresql"):
        c = res["coordinator"].get(db, {})
        if "skipped" in c:
            rows.append((f"coordinator on {db}", "skipped", c["skipped"][:60]))
            continue
        rows.append((f"coordinator heartbeats/s ({db}), every one written", f"{c['heartbeats']['per_s']:.0f}/s",
                     f">= {t['pg_heartbeats_per_s_min']}/s" if db == "postgresql" else ""))
        if "heartbeats_default_interval" in c:
            rows.append((f"  same, default 1 s write interval ({c['workers']} workers)",
                         f"{c['heartbeats_default_interval']['per_s']:.0f}/s", ""))
        rows.append((f"coordinator submits/s ({db}), one per request", f"{c['submits']['per_s']:.0f}/s", ""))
        if "batch_submits" in c:
            rows.append(("  results/s in batches of 32 (/jobs/submit-batch)",
                         f"{c['batch_submits']['results_per_s']:.0f}/s", ""))
    w0, w1 = max(len(a) for a, _, _ in rows), max(len(b) for _, b, _ in rows)
    lines = [f"{'measure':<{w0}}  {'figure':<{w1}}  target", f"{'-' * w0}  {'-' * w1}  {'-' * 14}"]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--singles", type=int, default=150, help="single-text calls, ONNX")
    p.add_argument("--torch-singles", type=int, default=60, help="single-text calls, PyTorch (slower to run)")
    p.add_argument("--batches", type=int, default=8, help="batches of 32 per bare backend")
    p.add_argument("--e2e", type=int, default=150, help="sequential pool requests")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    p.add_argument("--worker-threads", type=int, default=None, help="intra-op threads per worker (default: ORT's)")
    p.add_argument("--worker-batch", type=int, default=32, help="assignments per worker poll")
    p.add_argument("--coord-jobs", type=int, default=400, help="demo jobs (x2 submits) per database")
    p.add_argument("--skip-coordinator", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    started = time.perf_counter()
    texts = corpus(1024)
    res: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "platform": platform.platform(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
                 "texts": {"count": len(texts), "example": texts[0],
                           "mean_chars": round(sum(map(len, texts)) / len(texts), 1)},
                 "targets": TARGETS, "bare": {}}
    for backend in ("onnx", "torch"):
        singles = args.singles if backend == "onnx" else args.torch_singles
        log(f"bare {backend}: {singles} single-text calls, {args.batches} batches of 32 (fresh process) ...")
        res["bare"][backend] = bare(backend, singles, args.batches)
        b = res["bare"][backend]
        log(f"      load {b['load_s']} s, p50 {b['single']['p50_ms']:.1f} ms, p99 {b['single']['p99_ms']:.1f} ms, "
            f"{b['batched']['texts_per_s']:.0f} texts/s")
    # "The ratios use the faster one": lower single-text p50 (the same backend also wins on throughput here).
    res["bare_fastest"] = min(res["bare"], key=lambda k: res["bare"][k]["single"]["p50_ms"])
    res["pool"] = pool_section(args, texts)
    res["ratios"] = ratios(res)
    if args.skip_coordinator:
        res["coordinator"] = {"sqlite": {"skipped": "--skip-coordinator"}, "postgresql": {"skipped": "--skip-coordinator"}}
    else:
        from benchmarks import coord

        log("coordinator alone: heartbeats/s and submits/s on SQLite, then PostgreSQL ...")
        res["coordinator"] = coord.run(jobs=args.coord_jobs)
    res["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    res["duration_s"] = round(time.perf_counter() - started, 1)
    print()
    print(table(res))
    print(f"\n(load average at start {res['machine']['loadavg_at_start'][0]}, at end "
          f"{res['machine']['loadavg_at_end'][0]}; {res['duration_s']:.0f} s in all)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
