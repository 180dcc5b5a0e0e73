"""Parse a Prometheus text page into the few figures the Health page charts (no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Snapshot:
    """Cumulative counters at one instant, for one service."""

    requests: float = 0.0
    errors: float = 0.0  # 5xx answers
    duration_sum: float = 0.0
    duration_count: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    verification: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, float] = field(default_factory=dict)  # status -> gauge (summed over job types)
    workers: dict[str, float] = field(default_factory=dict)
    found: bool = False  # any openmesh_http_* series present


# Requests the coordinator holds open on purpose (worker long-polls, a gateway waiting for its job's
# verification): their duration is waiting time, not latency, and would swamp the latency chart.
HELD_ROUTES = frozenset({"/jobs/poll", "/jobs/poll-batch", "/internal/jobs", "/internal/jobs/batch"})


def parse(text: str) -> Snapshot:
    snap = Snapshot()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name.startswith("openmesh_http_request_duration_seconds") and labels.get("route") in HELD_ROUTES:
                continue
            if name == "openmesh_http_requests_total":
                snap.found = True
                snap.requests += value
                if str(labels.get("status", "")).startswith("5"):
                    snap.errors += value
            elif name == "openmesh_http_request_duration_seconds_sum":
                snap.duration_sum += value
            elif name == "openmesh_http_request_duration_seconds_count":
                snap.duration_count += value
            elif name == "openmesh_http_request_duration_seconds_bucket":
                le = float(labels.get("le", "inf"))
                snap.buckets[le] = snap.buckets.get(le, 0.0) + value
            elif name == "openmesh_verification_outcomes_total":
                key = labels.get("outcome", "?")
                snap.verification[key] = snap.verification.get(key, 0.0) + value
            elif name == "openmesh_jobs":
                key = labels.get("status", "?")
                snap.jobs[key] = snap.jobs.get(key, 0.0) + value
            elif name == "openmesh_workers":
                key = labels.get("status", "?")
                snap.workers[key] = snap.workers.get(key, 0.0) + value
    return snap


def _quantile(delta_buckets: dict[float, float], q: float) -> float | None:
    total = delta_buckets.get(float("inf"))
    if not total:
        return None
    target = q * total
    for le in sorted(delta_buckets):
        if delta_buckets[le] >= target:
            return le if le != float("inf") else None
    return None


def rates(prev: Snapshot, cur: Snapshot, seconds: float) -> dict[str, float | None]:
    """Request rate, 5xx rate, mean and p95 latency (ms) between two snapshots; None when unknown."""
    if seconds <= 0:
        return {"rps": None, "err_rps": None, "mean_ms": None, "p95_ms": None}
    d_req = max(0.0, cur.requests - prev.requests)
    d_err = max(0.0, cur.errors - prev.errors)
    d_cnt = cur.duration_count - prev.duration_count
    d_sum = cur.duration_sum - prev.duration_sum
    mean = (d_sum / d_cnt * 1000) if d_cnt > 0 else None
    delta_buckets = {le: cur.buckets.get(le, 0.0) - prev.buckets.get(le, 0.0) for le in cur.buckets}
    p95 = _quantile(delta_buckets, 0.95)
    return {
        "rps": d_req / seconds,
        "err_rps": d_err / seconds,
        "mean_ms": mean,
        "p95_ms": p95 * 1000 if p95 is not None else None,
    }
