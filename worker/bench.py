"""Encoder benchmark: single short sentence latency (p50) and throughput in batches of 32, per backend."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from worker.config import BACKENDS, force_offline

SHORT_SENTENCE = "The quick brown fox jumps over the lazy dog."
THROUGHPUT_BATCH = 32


def _corpus(n: int) -> list[str]:
    words = (
        "pool worker embedding verified signature ledger token gateway coordinator latency "
        "reputation emission batch cosine model sentence transformer vector query ranking"
    ).split()
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(8 + (i * 5) % 40)) for i in range(n)]


@dataclass
class BenchResult:
    backend: str
    load_s: float
    p50_ms: float
    p90_ms: float
    texts_per_s: float

    def line(self) -> str:
        return (
            f"{self.backend:6s} load {self.load_s:6.2f}s  single p50 {self.p50_ms:7.2f} ms  "
            f"p90 {self.p90_ms:7.2f} ms  batch{THROUGHPUT_BATCH} {self.texts_per_s:8.1f} texts/s"
        )


def bench_backend(
    backend: str, *, threads: int | None = None, repeats: int = 30, batches: int = 8
) -> BenchResult:
    """Load one backend and measure it (warm-up calls excluded)."""
    from worker.model import load_encoder

    force_offline()
    started = time.perf_counter()
    encoder = load_encoder(backend, threads=threads)
    load_s = time.perf_counter() - started
    for _ in range(3):
        encoder.encode([SHORT_SENTENCE])
    latencies = []
    for _ in range(repeats):
        t = time.perf_counter()
        encoder.encode([SHORT_SENTENCE])
        latencies.append((time.perf_counter() - t) * 1000.0)
    corpus = _corpus(THROUGHPUT_BATCH * batches)
    encoder.encode(corpus[:THROUGHPUT_BATCH])
    t = time.perf_counter()
    for i in range(batches):
        encoder.encode(corpus[i * THROUGHPUT_BATCH : (i + 1) * THROUGHPUT_BATCH])
    elapsed = time.perf_counter() - t
    latencies.sort()
    return BenchResult(
        backend=backend,
        load_s=load_s,
        p50_ms=statistics.median(latencies),
        p90_ms=latencies[int(0.9 * (len(latencies) - 1))],
        texts_per_s=len(corpus) / elapsed,
    )


def run_bench(
    backends: Sequence[str] = BACKENDS, *, threads: int | None = None, repeats: int = 30
) -> list[BenchResult]:
    """Benchmark each backend and print one line per backend to stdout."""
    results = []
    for backend in backends:
        result = bench_backend(backend, threads=threads, repeats=repeats)
        sys.stdout.write(result.line() + "\n")
        sys.stdout.flush()
        results.append(result)
    return results


if __name__ == "__main__":
    run_bench()
