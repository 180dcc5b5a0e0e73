"""Rate limits: sliding window (C20), atomic across processes on Redis (C21), client IP (C23),
429 headers, Redis-down fallback."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend.core.clientip import resolve_client_ip
from backend.core.metrics import RATE_LIMITED
from backend.core.ratelimit import RateLimiter
from tests.backend.gateway.conftest import API_KEY, HEADERS, REDIS_SKIP, REDIS_URL


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# -- C20 -------------------------------------------------------------------------------------------
def test_C20_no_double_burst_at_a_window_edge(make_gateway, fake, monkeypatch):
    gw = make_gateway(RATE_LIMIT_PER_MINUTE_API_KEY="60", RATE_LIMIT_PER_MINUTE_IP="100000")
    clock = Clock(1_800_000_000.0 + 59.5)  # hh:00:59.5
    monkeypatch.setattr(time, "time", clock)
    first = [gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS) for _ in range(60)]
    clock.now += 0.7  # hh:01:00.2
    second = [gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS) for _ in range(60)]
    accepted = [r for r in first + second if r.status_code == 200]
    refused = [r for r in first + second if r.status_code == 429]
    assert len(accepted) == 60 and len(refused) == 60
    for r in refused:
        assert r.json() == {"detail": "Rate limit exceeded"}
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["X-RateLimit-Limit"] == "60"
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert int(r.headers["X-RateLimit-Reset"]) >= clock.now
    assert int(refused[0].headers["Retry-After"]) == 60  # the oldest hit leaves at 00:59.5 + 60 s
    clock.now += 59.0  # hh:01:59.2: the burst of hh:00:59.5 is still inside the rolling minute
    assert gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS).status_code == 429
    clock.now += 0.5  # hh:01:59.7: it has left the window
    assert gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS).status_code == 200
    assert len(fake.calls) == 61


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_C20_rolling_minute_never_exceeds_limit(backend, monkeypatch, redis_available, redis_prefix):
    if backend == "redis" and not redis_available:
        pytest.skip(REDIS_SKIP)
    limiter = RateLimiter(REDIS_URL if backend == "redis" else None, prefix=redis_prefix)
    clock = Clock(1_800_000_000.0)
    monkeypatch.setattr(time, "time", clock)
    accepted: list[float] = []
    rng = random.Random(7)
    for _ in range(400):
        clock.now += rng.uniform(0, 1.2)
        if limiter.hit("gw-key:c20", 60).allowed:
            accepted.append(clock.now)
    for i, t in enumerate(accepted):
        in_window = [u for u in accepted[i:] if u < t + 60]
        assert len(in_window) <= 60
    assert len(accepted) >= 60


# -- C21 -------------------------------------------------------------------------------------------
def test_C21_two_limiters_on_one_redis_allow_exactly_the_limit(redis_available, redis_prefix):
    if not redis_available:
        pytest.skip(REDIS_SKIP)
    a = RateLimiter(REDIS_URL, prefix=redis_prefix)
    b = RateLimiter(REDIS_URL, prefix=redis_prefix)
    barrier = threading.Barrier(20)

    def worker(i: int) -> list[bool]:
        limiter = a if i % 2 else b
        barrier.wait()
        return [limiter.hit("gw-key:c21", 100).allowed for _ in range(10)]

    with ThreadPoolExecutor(20) as pool:
        results = [ok for batch in pool.map(worker, range(20)) for ok in batch]
    assert results.count(True) == 100 and results.count(False) == 100
    assert a.status()["status"] == b.status()["status"] == "ok"


def test_C21_two_gateways_sharing_redis(make_gateway, fake, redis_available, redis_prefix):
    if not redis_available:
        pytest.skip(REDIS_SKIP)
    env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix, "RATE_LIMIT_PER_MINUTE_API_KEY": "100",
           "RATE_LIMIT_PER_MINUTE_IP": "100000"}
    gw1 = make_gateway(limiter=RateLimiter(REDIS_URL, prefix=redis_prefix), **env)
    gw2 = make_gateway(limiter=RateLimiter(REDIS_URL, prefix=redis_prefix), **env)

    def worker(i: int) -> list[int]:
        gw = gw1 if i % 2 else gw2
        return [gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS).status_code for _ in range(10)]

    with ThreadPoolExecutor(20) as pool:
        codes = [c for batch in pool.map(worker, range(20)) for c in batch]
    assert codes.count(200) == 100 and codes.count(429) == 100
    assert len(fake.calls) == 100


# -- C23 -------------------------------------------------------------------------------------------
def test_C23_spoofed_forwarded_for_does_not_escape_the_ip_limit(make_gateway, fake):
    gw = make_gateway(RATE_LIMIT_PER_MINUTE_IP="5", client=("203.0.113.7", 5555))
    codes = []
    for i in range(10):
        spoof = f"{random.randint(1, 223)}.{random.randint(0, 255)}.{random.randint(0, 255)}.{i + 1}"
        codes.append(gw.post("/v1/embed", json={"text": "a"},
                             headers={"X-API-Key": f"{API_KEY}-{i}", "X-Forwarded-For": spoof}).status_code)
    assert codes == [200] * 5 + [429] * 5


def test_C23_behind_a_trusted_proxy_the_rightmost_untrusted_hop_counts(make_gateway, fake):
    gw = make_gateway(RATE_LIMIT_PER_MINUTE_IP="3", TRUSTED_PROXIES="10.0.0.0/8", client=("10.0.0.2", 1))
    codes = []
    for i in range(5):  # the client forges the left part; the proxy appends the real address
        xff = f"198.18.{i}.1, 192.0.2.44, 10.0.0.9"
        codes.append(gw.post("/v1/embed", json={"text": "a"},
                             headers={"X-API-Key": f"{API_KEY}-{i}", "X-Forwarded-For": xff}).status_code)
    assert codes == [200] * 3 + [429] * 2
    # another real client behind the same proxy has its own quota
    r = gw.post("/v1/embed", json={"text": "a"}, headers={"X-API-Key": API_KEY, "X-Forwarded-For": "192.0.2.45"})
    assert r.status_code == 200


@pytest.mark.parametrize(("peer", "xff", "trusted", "expected"), [
    ("203.0.113.7", ["1.2.3.4"], "", "203.0.113.7"),
    ("203.0.113.7", ["1.2.3.4"], "10.0.0.0/8", "203.0.113.7"),
    ("10.0.0.2", ["1.2.3.4, 192.0.2.44"], "10.0.0.0/8", "192.0.2.44"),
    ("10.0.0.2", ["1.2.3.4, 192.0.2.44, 10.1.1.1"], "10.0.0.0/8", "192.0.2.44"),
    ("10.0.0.2", ["1.2.3.4", "192.0.2.44"], "10.0.0.0/8", "192.0.2.44"),
    ("10.0.0.2", [], "10.0.0.0/8", "10.0.0.2"),
    ("10.0.0.2", ["10.0.0.5"], "10.0.0.0/8", "10.0.0.5"),
    ("10.0.0.2", ["garbage, 192.0.2.44"], "10.0.0.0/8", "192.0.2.44"),
    ("10.0.0.2", ["192.0.2.44, garbage"], "10.0.0.0/8", "10.0.0.2"),
    ("127.0.0.1", ["[2001:db8::1]:443"], "127.0.0.1, ::1", "2001:db8::1"),
    ("127.0.0.1", ["192.0.2.9:1234"], "127.0.0.1", "192.0.2.9"),
])
def test_C23_client_ip_resolution(peer, xff, trusted, expected):
    assert resolve_client_ip(peer, xff, trusted) == expected


# -- headers, metrics, fallback --------------------------------------------------------------------
def test_success_and_error_responses_carry_ratelimit_headers(make_gateway, fake):
    gw = make_gateway(RATE_LIMIT_PER_MINUTE_API_KEY="7")
    r = gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS)
    assert r.status_code == 200
    assert r.headers["X-RateLimit-Limit"] == "7" and r.headers["X-RateLimit-Remaining"] == "6"
    assert "X-Request-ID" in r.headers and "Retry-After" not in r.headers
    fake.fail_with(402, "Insufficient balance")
    r = gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS)
    assert r.status_code == 402 and r.headers["X-RateLimit-Remaining"] == "5"
    r = gw.post("/v1/embeddings", json={"input": "a"}, headers=HEADERS)
    assert r.status_code == 402 and r.headers["X-RateLimit-Remaining"] == "4"
    assert r.json()["error"]["code"] == "insufficient_quota"


def test_429_on_openai_route_is_openai_shaped_and_counted(make_gateway, fake):
    gw = make_gateway(RATE_LIMIT_PER_MINUTE_API_KEY="1")
    before = RATE_LIMITED.labels("api_key")._value.get()
    assert gw.post("/v1/embeddings", json={"input": "a"}, headers=HEADERS).status_code == 200
    r = gw.post("/v1/embeddings", json={"input": "a"}, headers=HEADERS)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(r.headers["Retry-After"]) >= 1 and r.headers["X-RateLimit-Limit"] == "1"
    assert RATE_LIMITED.labels("api_key")._value.get() == before + 1
    assert "openmesh_rate_limit_rejections_total" in gw.get("/metrics").text


def test_rate_limit_applies_before_validation(make_gateway, fake):
    gw = make_gateway(RATE_LIMIT_PER_MINUTE_API_KEY="2")
    assert gw.post("/v1/embed", json={"text": ""}, headers=HEADERS).status_code == 422
    assert gw.post("/v1/embed", json={"text": ""}, headers=HEADERS).status_code == 422
    assert gw.post("/v1/embed", json={"text": ""}, headers=HEADERS).status_code == 429
    # a different key has its own budget (keyed by a hash of the raw key, no coordinator lookup)
    assert gw.post("/v1/embed", json={"text": "a"}, headers={"X-API-Key": "om_other"}).status_code == 200


def test_redis_down_falls_back_to_process_limits(make_gateway, fake):
    gw = make_gateway(REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_PER_MINUTE_API_KEY="3")
    codes = [gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]  # neither 500s nor unlimited
    health = gw.get("/health")
    assert health.status_code == 200 and health.json()["rate_limit"] == "degraded"
    ready = gw.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["rate_limit"]["status"] == "degraded"
    assert ready.json()["rate_limit"]["active"] == "memory"


def test_redis_recovery_switches_back(redis_available, redis_prefix):
    if not redis_available:
        pytest.skip(REDIS_SKIP)
    limiter = RateLimiter(REDIS_URL, prefix=redis_prefix, retry_interval=0.0)
    limiter._failed(ConnectionError("simulated"))
    assert limiter.status()["status"] == "degraded"
    assert limiter.hit("gw-key:r", 5).allowed
    assert limiter.status() == {"backend": "redis", "status": "ok", "active": "redis"}
    assert limiter.check() is True
