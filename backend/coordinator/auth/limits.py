"""Login rate limiting: per client IP and per email, through the shared limiter.

The shared limiter lives in `backend.core.ratelimit` (Redis when REDIS_URL is set, else in-process)
and the trusted-proxy-aware client address in `backend.core.clientip`. Until those modules exist this
falls back to an in-process sliding window and to the socket peer address (which ignores
X-Forwarded-For and so cannot be spoofed).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from fastapi import Request

WINDOW_SECONDS = 60.0


@dataclass
class HitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float
    retry_after: int


class SlidingWindowLimiter:
    """In-process sliding log: at most `limit` hits in any rolling 60 s per key."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit_per_minute: int) -> HitResult:
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - WINDOW_SECONDS:
                q.popleft()
            if len(q) >= limit_per_minute:
                wait = q[0] + WINDOW_SECONDS - now
                return HitResult(False, limit_per_minute, 0, time.time() + wait, max(1, math.ceil(wait)))
            q.append(now)
            if len(self._hits) > 100_000:  # bound memory: drop keys whose window has passed
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - WINDOW_SECONDS]:
                    del self._hits[k]
            wait = q[0] + WINDOW_SECONDS - now
            return HitResult(True, limit_per_minute, limit_per_minute - len(q), time.time() + wait, 0)


_fallback = SlidingWindowLimiter()


async def _await(value: Any) -> Any:
    return await value


def _hit(key: str, limit_per_minute: int) -> Any:
    try:
        from backend.core.ratelimit import get_limiter
    except ImportError:
        return _fallback.hit(key, limit_per_minute)
    result = get_limiter().hit(key, limit_per_minute)
    if inspect.isawaitable(result):
        # Sync routes run in a worker thread; an async limiter is awaited on the event loop.
        import anyio.from_thread

        result = anyio.from_thread.run(_await, result)
    return result


def client_ip(request: Request) -> str:
    try:
        from backend.core.clientip import client_ip as shared_client_ip
    except ImportError:
        return request.client.host if request.client else "unknown"
    return shared_client_ip(request)


def _email_key(email: str) -> str:
    # Hashed so limiter keys (possibly in a shared Redis) do not hold addresses.
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def check_login_allowed(ip: str, email: str, limit_per_minute: int) -> int | None:
    """Count one login attempt for the IP and for the email; seconds to wait when over either limit.

    Applied the same way whether or not the email exists, so a 429 reveals nothing about accounts.
    """
    if limit_per_minute <= 0:
        return None
    # The IP is checked first: a blocked address does not go on to spend the email's quota.
    for key in (f"login:ip:{ip}", f"login:email:{_email_key(email)}"):
        result = _hit(key, limit_per_minute)
        if not result.allowed:
            return max(1, math.ceil(float(result.retry_after or 1)))
    return None
