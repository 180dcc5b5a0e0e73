"""The Health page's Prometheus parsing: held-open routes do not count as latency."""

from __future__ import annotations

from dashboard import metrics

PAGE = """
# TYPE openmesh_http_requests_total counter
openmesh_http_requests_total{service="coordinator",route="/jobs/poll-batch",method="POST",status="200"} 3.0
openmesh_http_requests_total{service="coordinator",route="/workers/heartbeat",method="POST",status="200"} 5.0
openmesh_http_requests_total{service="coordinator",route="/auth/login",method="POST",status="500"} 1.0
# TYPE openmesh_http_request_duration_seconds histogram
openmesh_http_request_duration_seconds_bucket{service="coordinator",route="/jobs/poll-batch",method="POST",le="0.01"} 0.0
openmesh_http_request_duration_seconds_bucket{service="coordinator",route="/jobs/poll-batch",method="POST",le="+Inf"} 3.0
openmesh_http_request_duration_seconds_sum{service="coordinator",route="/jobs/poll-batch",method="POST"} 90.0
openmesh_http_request_duration_seconds_count{service="coordinator",route="/jobs/poll-batch",method="POST"} 3.0
openmesh_http_request_duration_seconds_bucket{service="coordinator",route="/workers/heartbeat",method="POST",le="0.01"} 6.0
openmesh_http_request_duration_seconds_bucket{service="coordinator",route="/workers/heartbeat",method="POST",le="+Inf"} 6.0
openmesh_http_request_duration_seconds_sum{service="coordinator",route="/workers/heartbeat",method="POST"} 0.012
openmesh_http_request_duration_seconds_count{service="coordinator",route="/workers/heartbeat",method="POST"} 6.0
"""


def test_long_polls_are_counted_as_requests_but_not_as_latency():
    snap = metrics.parse(PAGE)
    assert snap.requests == 9 and snap.errors == 1
    assert snap.duration_count == 6 and abs(snap.duration_sum - 0.012) < 1e-9
    assert snap.buckets == {0.01: 6.0, float("inf"): 6.0}
    rates = metrics.rates(metrics.Snapshot(), snap, 10.0)
    assert rates["p95_ms"] is not None and rates["p95_ms"] <= 10
