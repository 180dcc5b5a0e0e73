"""Prometheus collectors shared by both services, and the /metrics response."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

HTTP_REQUESTS = Counter("openmesh_http_requests_total", "HTTP requests", ["service", "route", "method", "status"])
HTTP_LATENCY = Histogram(
    "openmesh_http_request_duration_seconds", "HTTP request latency", ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOBS_CREATED = Counter("openmesh_jobs_created_total", "Jobs created", ["job_type", "kind"])
JOBS_FINISHED = Counter("openmesh_jobs_finished_total", "Jobs finished", ["job_type", "status"])
VERIFICATIONS = Counter("openmesh_verification_outcomes_total", "Verification outcomes", ["outcome"])
QUEUE_WAIT = Histogram(
    "openmesh_job_queue_wait_seconds", "Time from job creation to verification",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RATE_LIMITED = Counter("openmesh_rate_limit_rejections_total", "Requests refused by a rate limit", ["scope"])
JOBS_BY_STATE = Gauge("openmesh_jobs", "Jobs by state and type", ["status", "job_type"])
WORKERS_BY_STATUS = Gauge("openmesh_workers", "Workers by status", ["status"])
LEDGER_TOTALS = Gauge("openmesh_ledger_total_tokens", "Ledger totals by entry kind", ["kind"])


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
