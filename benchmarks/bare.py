"""The bare model, no pool: single-text latency and batched throughput for one backend.

Loads the encoder exactly as a worker does (`worker.model.load_encoder`), so the figures are what
the fastest local use of the same runtime gives. Run as a module it prints one JSON object, which
lets `benchmarks.run` measure each backend in a fresh process (PyTorch's import and memory never
linger beside the pool).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks.stats import summary
from benchmarks.texts import corpus

BATCH = 32


def measure(backend: str, *, singles: int, batches: int, threads: int | None = None) -> dict:
    from worker.config import force_offline
    from worker.model import load_encoder

    force_offline()
    t0 = time.perf_counter()
    encoder = load_encoder(backend, threads=threads)
    load_s = time.perf_counter() - t0
    texts = corpus()
    for t in texts[:5]:  # warm-up
        encoder.encode([t])
    lat = []
    cpu0 = time.process_time()
    for i in range(singles):
        t = time.perf_counter()
        encoder.encode([texts[i % len(texts)]])
        lat.append((time.perf_counter() - t) * 1000.0)
    single_cpu_ms = (time.process_time() - cpu0) * 1000.0 / max(1, singles)
    encoder.encode(texts[:BATCH])
    n = 0
    t = time.perf_counter()
    for b in range(batches):
        chunk = [texts[(b * BATCH + j) % len(texts)] for j in range(BATCH)]
        encoder.encode(chunk)
        n += len(chunk)
    elapsed = time.perf_counter() - t
    return {"backend": backend, "dtype": getattr(encoder, "dtype", "fp32"), "threads": threads or "default",
            "load_s": round(load_s, 2), "single": {**summary(lat), "cpu_ms": round(single_cpu_ms, 2)},
            "batched": {"batch": BATCH, "texts": n, "texts_per_s": round(n / elapsed, 1)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", required=True, choices=["onnx", "torch"])
    p.add_argument("--singles", type=int, default=200)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    sys.stdout.write(json.dumps(measure(a.backend, singles=a.singles, batches=a.batches, threads=a.threads)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
