"""Sliding-window rate limits (the `limits` library's moving window), shared through Redis when set.

- Algorithm: `MovingWindowRateLimiter`: every accepted hit is a timestamped entry and a hit is accepted
  only while fewer than N entries lie in the last 60 s, so no rolling minute ever holds more than N
  accepted requests (no double burst at a window edge, field case C20).
- Storage: Redis (settings.redis_url, keys under `<settings.redis_prefix>:ratelimit:`) when set; the
  check-and-record is the library's single Lua script, atomic across threads and processes (C21).
  Without REDIS_URL: in-process memory (one process only).
- Redis trouble: the hit is answered by an in-process limiter instead (never a 500, never unlimited),
  the switch is logged once, `status()` reports `degraded`, and Redis is tried again every
  `retry_interval` seconds; the first success switches back and logs the recovery.

Interface for callers (gateway, coordinator login limits):

    result = get_limiter().hit("login:203.0.113.7", 10)      # RateLimitResult
    if not result.allowed:
        raise too_many_requests(result)                       # 429 + Retry-After + X-RateLimit-*

A limit of 0 or less disables that limit (always allowed).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.responses import JSONResponse

from backend.core.config import get_settings
from backend.core.errors import TooManyRequests
from backend.core.metrics import RATE_LIMITED

log = logging.getLogger("openmesh.ratelimit")

RATE_LIMIT_DETAIL = "Rate limit exceeded"


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the oldest counted request leaves the window
    retry_after: int  # seconds until a new request can be accepted (0 when allowed)

    def headers(self) -> dict[str, str]:
        """X-RateLimit-Limit/Remaining/Reset (Reset = epoch seconds), plus Retry-After when refused."""
        h = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            h["Retry-After"] = str(self.retry_after)
        return h


def rate_limit_headers(result: RateLimitResult) -> dict[str, str]:
    return result.headers()


def too_many_requests(result: RateLimitResult, detail: str = RATE_LIMIT_DETAIL) -> TooManyRequests:
    """The DomainError to raise for a refused hit (rendered as 429 `{"detail": ...}` with headers)."""
    return TooManyRequests(detail, headers=result.headers())


def rate_limited_response(result: RateLimitResult, detail: str = RATE_LIMIT_DETAIL) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=429, headers=result.headers())


def _scope_of(key: str) -> str:
    return key.split(":", 1)[0] if ":" in key else "default"


class RateLimiter:
    """Moving-window limiter over Redis (if `redis_url`) with an in-process fallback."""

    def __init__(self, redis_url: str | None = None, *, prefix: str = "openmesh",
                 retry_interval: float = 5.0, socket_timeout: float = 0.5) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis: MovingWindowRateLimiter | None = None
        self._redis_storage: RedisStorage | None = None
        if redis_url:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self._redis_storage = RedisStorage(
                redis_url, key_prefix=f"{prefix}:ratelimit", socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout, retry=Retry(NoBackoff(), 0),
                health_check_interval=30,
            )
            self._redis = MovingWindowRateLimiter(self._redis_storage)
        self._lock = threading.Lock()
        self._degraded = False
        self._retry_at = 0.0
        self._last_error: str | None = None

    # -- status ------------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "memory"

    @property
    def degraded(self) -> bool:
        return self._degraded

    def healthy(self) -> bool:
        return not self._degraded

    def status(self) -> dict[str, Any]:
        """For health checks: `{"backend", "status": "ok"|"degraded", "active", "error"?}`."""
        out: dict[str, Any] = {
            "backend": self.backend,
            "status": "degraded" if self._degraded else "ok",
            "active": "memory" if (self._degraded or self._redis is None) else "redis",
        }
        if self._degraded and self._last_error:
            out["error"] = self._last_error
        return out

    def check(self) -> bool:
        """Ping Redis now (readiness probes); a success ends a degraded period. True without Redis."""
        if self._redis_storage is None:
            return True
        try:
            ok = bool(self._redis_storage.check())
        except Exception as exc:  # noqa: BLE001 - any Redis failure means "not healthy"
            ok = False
            self._last_error = type(exc).__name__
        if ok:
            self._recovered()
        else:
            self._failed(RuntimeError(self._last_error or "ping failed"))
        return ok

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self.retry_interval
            self._last_error = f"{type(exc).__name__}: {exc}"[:200]
            if not self._degraded:
                self._degraded = True
                log.warning("rate-limit Redis unavailable (%s); using in-process limits until it is back",
                            type(exc).__name__)

    def _recovered(self) -> None:
        with self._lock:
            if self._degraded:
                self._degraded = False
                self._last_error = None
                log.warning("rate-limit Redis is back; shared limits restored")

    # -- hits --------------------------------------------------------------------------------------
    def _apply(self, strategy: MovingWindowRateLimiter, item: RateLimitItemPerMinute, key: str,
               limit: int) -> RateLimitResult:
        allowed = strategy.hit(item, key)
        reset_time, remaining = strategy.get_window_stats(item, key)
        now = time.time()
        retry_after = 0 if allowed else max(1, math.ceil(reset_time - now))
        return RateLimitResult(allowed=allowed, limit=limit, remaining=max(int(remaining), 0),
                               reset_at=float(reset_time), retry_after=retry_after)

    def hit(self, key: str, limit_per_minute: int, *, scope: str | None = None) -> RateLimitResult:
        """Record one request for `key` under `limit_per_minute`; refused hits are not recorded."""
        if limit_per_minute <= 0:
            return RateLimitResult(True, 0, 0, time.time(), 0)
        item = RateLimitItemPerMinute(limit_per_minute)
        result: RateLimitResult | None = None
        if self._redis is not None and (not self._degraded or time.monotonic() >= self._retry_at):
            try:
                result = self._apply(self._redis, item, key, limit_per_minute)
            except Exception as exc:  # noqa: BLE001 - any storage failure falls back, never a 500
                self._failed(exc)
            else:
                self._recovered()
        if result is None:
            result = self._apply(self._memory, item, key, limit_per_minute)
        if not result.allowed:
            RATE_LIMITED.labels(scope or _scope_of(key)).inc()
        return result

    async def ahit(self, key: str, limit_per_minute: int, *, scope: str | None = None) -> RateLimitResult:
        """`hit` for async code: Redis round trips run in a worker thread, memory inline."""
        if self._redis is None:
            return self.hit(key, limit_per_minute, scope=scope)
        return await anyio.to_thread.run_sync(lambda: self.hit(key, limit_per_minute, scope=scope))

    def reset(self) -> None:
        """Forget every in-process count (tests)."""
        self._memory = MovingWindowRateLimiter(MemoryStorage())


_limiter: RateLimiter | None = None
_limiter_conf: tuple[str | None, str] | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> RateLimiter:
    """The process-wide limiter for the current settings (rebuilt if REDIS_URL/REDIS_PREFIX change)."""
    global _limiter, _limiter_conf
    s = get_settings()
    conf = (s.redis_url or None, s.redis_prefix)
    if _limiter is None or _limiter_conf != conf:
        with _limiter_lock:
            if _limiter is None or _limiter_conf != conf:
                _limiter = RateLimiter(conf[0], prefix=conf[1])
                _limiter_conf = conf
    return _limiter


def reset_limiter() -> None:
    """Drop the process-wide limiter (tests); the next get_limiter() builds a fresh one."""
    global _limiter, _limiter_conf
    with _limiter_lock:
        _limiter = None
        _limiter_conf = None


def healthy() -> bool:
    return get_limiter().healthy()


def status() -> dict[str, Any]:
    return get_limiter().status()
