"""API-key extraction and the per-IP / per-key rate limits every /v1 job route applies.

Order on a job route: API-key presence (401 `Invalid API key` when absent or malformed) → rate limits
(per client IP, then per key; 429 `Rate limit exceeded` with Retry-After) → body validation (422) →
the coordinator, which checks the key itself (401 for an unknown or revoked key) in the same call that
creates the job. The gateway never calls the coordinator twice per request: the per-key limit is keyed
by a hash of the raw key string, so an unknown key is limited like any other and costs no lookup.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from backend.core.clientip import client_ip
from backend.core.config import get_settings
from backend.core.errors import Unauthorized
from backend.core.ratelimit import RateLimiter, RateLimitResult, get_limiter, too_many_requests

INVALID_API_KEY = "Invalid API key"
MAX_KEY_CHARS = 512
STATE_HEADERS = "ratelimit_headers"

# Declared for the OpenAPI schema (Swagger's Authorize button); extraction is done by hand below.
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key from POST /auth/api-keys")
_bearer = HTTPBearer(auto_error=False, description="The same API key as `Authorization: Bearer <key>`")


def extract_api_key(request: Request) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer <key>`; None if absent or malformed."""
    raw = request.headers.get("x-api-key")
    if not raw:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        raw = token if scheme.lower() == "bearer" else None
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable() or " " in key:
        return None
    return key


def key_identity(api_key: str) -> str:
    """A stable, non-reversible id for a raw key string (used for the per-key limit)."""
    return hashlib.sha256(b"openmesh-ratelimit-v1:" + api_key.encode("utf-8")).hexdigest()[:32]


def limiter_for(request: Request) -> RateLimiter:
    return getattr(request.app.state, "limiter", None) or get_limiter()


def _remember(request: Request, result: RateLimitResult) -> None:
    # A gateway middleware copies these onto whatever response this request ends with.
    setattr(request.state, STATE_HEADERS, {k: v for k, v in result.headers().items() if k != "Retry-After"})


async def limit_ip(request: Request) -> RateLimitResult:
    """Per-client-IP limit alone (public /v1 routes)."""
    result = await limiter_for(request).ahit(f"gw-ip:{client_ip(request)}",
                                             get_settings().rate_limit_per_minute_ip, scope="ip")
    _remember(request, result)
    if not result.allowed:
        raise too_many_requests(result)
    return result


async def require_api_key(
    request: Request,
    _h: Annotated[str | None, Depends(_api_key_header)] = None,
    _b: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> str:
    """The caller's API key, after the per-IP and per-key limits accepted this request."""
    api_key = extract_api_key(request)
    if api_key is None:
        raise Unauthorized(INVALID_API_KEY, headers={"WWW-Authenticate": "Bearer"})
    s = get_settings()
    limiter = limiter_for(request)
    ip_result = await limiter.ahit(f"gw-ip:{client_ip(request)}", s.rate_limit_per_minute_ip, scope="ip")
    if not ip_result.allowed:
        _remember(request, ip_result)
        raise too_many_requests(ip_result)
    key_result = await limiter.ahit(f"gw-key:{key_identity(api_key)}", s.rate_limit_per_minute_api_key,
                                    scope="api_key")
    _remember(request, key_result)
    if not key_result.allowed:
        raise too_many_requests(key_result)
    return api_key


ApiKey = Annotated[str, Depends(require_api_key)]
