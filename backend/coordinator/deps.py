"""Dependency aliases: the DB session, the current user by role, and internal (gateway) callers."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_session
from backend.core.errors import Forbidden, Unauthorized
from backend.core.security import constant_time_equals, decode_access_token
from backend.models import Role, User

SessionDep = Annotated[Session, Depends(get_session)]

# tokenUrl makes Swagger's Authorize button log in with the OAuth2 form.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


def get_current_user(session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    if not token:
        raise Unauthorized("Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    claims = decode_access_token(token)
    if claims is None:
        raise Unauthorized("Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthorized("Invalid or expired token") from None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
    # End the read transaction now: on SQLite every transaction holds the write lock, and a
    # long-poll must not keep it (or a pooled connection) for its whole wait.
    session.expunge(user)
    session.rollback()
    return user


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
