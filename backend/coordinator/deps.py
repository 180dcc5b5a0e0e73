"""Dependency aliases: the DB session, the current user by role, and internal (gateway) callers."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_session, read_only
from backend.core.errors import Forbidden, Unauthorized
from backend.core.security import constant_time_equals, decode_access_token
from backend.models import Role, User

SessionDep = Annotated[Session, Depends(get_session)]

# tokenUrl makes Swagger's Authorize button log in with the OAuth2 form.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


_verified_tokens: dict[tuple[str, str], tuple[int, float]] = {}
"""Access tokens whose signature already verified → (user id, exp). Workers send the same token
thousands of times; the HMAC check and JSON parsing are then skipped until the token expires."""
_VERIFIED_TOKENS_MAX = 4096


def user_id_from_token(token: str | None) -> int:
    """The user id of a valid access token (no database work); 401 otherwise."""
    if not token:
        raise Unauthorized("Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    cache_key = (get_settings().jwt_secret, token)  # a new JWT_SECRET invalidates every entry
    hit = _verified_tokens.get(cache_key)
    if hit is not None and hit[1] > time.time():
        return hit[0]
    claims = decode_access_token(token)
    if claims is None:
        raise Unauthorized("Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthorized("Invalid or expired token") from None
    if isinstance(claims.get("exp"), int | float):
        if len(_verified_tokens) >= _VERIFIED_TOKENS_MAX:
            _verified_tokens.clear()
        _verified_tokens[cache_key] = (user_id, float(claims["exp"]))
    return user_id


def active_user(session: Session, user_id: int) -> User:
    """The token's user, still present and active; 401 otherwise."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
    return user


def get_current_user(session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    user_id = user_id_from_token(token)
    user = active_user(read_only(session), user_id)
    # End the read transaction now: a long request must not keep a pooled connection (or, on
    # SQLite, a read snapshot) for its whole wait.
    session.expunge(user)
    session.rollback()
    return user


async def get_token_user_id(token: Annotated[str | None, Depends(oauth2_scheme)]) -> int:
    """For hot worker routes: check the token on the event loop, and load the user (`active_user`)
    in the same thread and transaction as the route's own work (one threadpool hop, not four)."""
    return user_id_from_token(token)


TokenUserId = Annotated[int, Depends(get_token_user_id)]


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[User], User]:
    def _check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"This action needs the {' or '.join(r.value for r in roles)} role")
        return user

    return _check


def _client_ip(request: Request) -> str:
    from backend.core.clientip import client_ip  # X-Forwarded-For only behind TRUSTED_PROXIES (C23)

    return client_ip(request)


def check_admin_ip(request: Request) -> None:
    """Optional IP allowlist (ADMIN_IP_ALLOWLIST) for /admin and /internal routes."""
    allow = get_settings().admin_allowlist
    if not allow:
        return
    try:
        ip = ipaddress.ip_address(_client_ip(request))
    except ValueError:
        raise Forbidden("Address not allowed") from None
    if not any(ip in ipaddress.ip_network(net, strict=False) for net in allow):
        raise Forbidden("Address not allowed")


def _admin(user: CurrentUser, _ip: Annotated[None, Depends(check_admin_ip)]) -> User:
    if user.role != Role.admin:
        raise Forbidden("This action needs the admin role")
    return user


ClientUser = Annotated[User, Depends(require_roles(Role.client))]
WorkerOwner = Annotated[User, Depends(require_roles(Role.worker_owner))]
OwnerOrAdmin = Annotated[User, Depends(require_roles(Role.worker_owner, Role.admin))]
AdminUser = Annotated[User, Depends(_admin)]


def verify_internal(
    _ip: Annotated[None, Depends(check_admin_ip)],
    x_internal_token: Annotated[str | None, Header()] = None,
) -> None:
    """Gateway-to-coordinator calls carry COORDINATOR_INTERNAL_TOKEN (current or previous)."""
    if not x_internal_token or not any(
        constant_time_equals(x_internal_token, t) for t in get_settings().internal_tokens
    ):
        raise Unauthorized("Invalid internal token")


InternalCaller = Depends(verify_internal)
