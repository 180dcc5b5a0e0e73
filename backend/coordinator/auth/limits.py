"""Login rate limiting: per client IP and per email, through the shared sliding-window limiter.

`backend.core.ratelimit` is Redis-backed when REDIS_URL is set (shared by every coordinator process),
in-process otherwise; `backend.core.clientip` honours X-Forwarded-For only behind TRUSTED_PROXIES (C23).
"""

from __future__ import annotations

import hashlib

from fastapi import Request

from backend.core.clientip import client_ip as _shared_client_ip
from backend.core.ratelimit import RateLimitResult, get_limiter

SCOPE = "login"


def client_ip(request: Request) -> str:
    return _shared_client_ip(request) or "unknown"


def _email_key(email: str) -> str:
    # Hashed so limiter keys (possibly in a shared Redis) do not hold addresses.
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def check_login_allowed(ip: str, email: str, limit_per_minute: int) -> RateLimitResult | None:
    """Count one login attempt for the IP, then for the email; the refused hit when over either limit.

    Applied the same way whether or not the email exists, so a 429 reveals nothing about accounts.
    The IP is checked first: an address already over its limit does not spend the email's quota.
    """
    if limit_per_minute <= 0:
        return None
    limiter = get_limiter()
    for key in (f"login:ip:{ip}", f"login:email:{_email_key(email)}"):
        result = limiter.hit(key, limit_per_minute, scope=SCOPE)
        if not result.allowed:
            return result
    return None
