"""Rules of the auth domain: accounts, logins, refresh-token rotation, API keys, the admin account.

Functions that are a whole unit of work for one HTTP call (register, login, refresh, logout, API-key
create/revoke) commit. `resolve_api_key` and `ensure_admin` are called inside someone else's unit of
work and never commit.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from backend.coordinator.auth.limits import check_login_allowed
from backend.coordinator.auth.schemas import MAX_EMAIL_CHARS, TokenPair, legacy_email_form, normalise_email
from backend.core.config import Settings, get_settings
from backend.core.errors import Conflict, NotFound, TooManyRequests, Unauthorized, Unprocessable
from backend.core.security import (
    API_KEY_PREFIX,
    DUMMY_HASH,
    MAX_PASSWORD_CHARS,
    REFRESH_PREFIX,
    create_access_token,
    hash_password,
    hash_token,
    new_api_key,
    new_refresh_token,
    now_utc,
    verify_password,
)
from backend.models import ApiKey, RefreshToken, Role, User

log = logging.getLogger("openmesh.auth")

INVALID_CREDENTIALS = "Invalid email or password"
INVALID_REFRESH = "Invalid or expired refresh token"
TOO_MANY_LOGINS = "Too many login attempts, try again later"
MAX_ACTIVE_API_KEYS = 100
# last_used_at is written at most this often per key, so the gateway's hot path stays read-only.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_API_KEY_CHARS = 256


# --- accounts ---------------------------------------------------------------------------------


def get_user_by_email(session: Session, email: str) -> User | None:
    # An account registered with a Unicode domain before domains were stored in punycode keeps working.
    forms = {normalise_email(email), legacy_email_form(email)}
    return session.exec(select(User).where(col(User.email).in_(forms)).order_by(col(User.id))).first()


def register(session: Session, *, email: str, password: str, role: Role | str) -> User:
    """A new client or worker-owner account. The email arrives validated and lowercased."""
    role = Role(role)
    if role == Role.admin:  # schemas refuse it too; the rule holds for every caller
        raise Unprocessable("The admin account cannot be self-registered")
    email = normalise_email(email)
    # Hash before touching the database: on SQLite a transaction holds the write lock, and argon2 is
    # deliberately slow.
    password_hash = hash_password(password)
    if get_user_by_email(session, email) is not None:
        raise Conflict("Email already registered")
    user = User(email=email, password_hash=password_hash, role=role)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:  # a concurrent registration of the same address won the race
        session.rollback()
        raise Conflict("Email already registered") from None
    session.refresh(user)
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The active user with these credentials, else 401 with one message whatever went wrong.

    An unknown email is verified against a dummy hash so both cases take about the same time.
    """
    email = normalise_email(email)
    user = get_user_by_email(session, email) if len(email) <= MAX_EMAIL_CHARS else None
    # End the read before the (slow) hash check, so no lock or pooled transaction is held meanwhile.
    if user is not None:
        session.expunge(user)
    session.rollback()
    if len(password) > MAX_PASSWORD_CHARS:
        password = password[: MAX_PASSWORD_CHARS + 1]  # cannot match; keeps the hashing work bounded
    if user is None:
        verify_password(password, DUMMY_HASH)
        raise Unauthorized(INVALID_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})
    ok = verify_password(password, user.password_hash)
    if not ok or not user.is_active:
        raise Unauthorized(INVALID_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})
    return user


def login(session: Session, *, email: str, password: str, client_ip: str,
          settings: Settings | None = None) -> TokenPair:
    """Rate-limited (per IP and per email) credential check, then a fresh token pair."""
    settings = settings or get_settings()
    refused = check_login_allowed(client_ip, normalise_email(email)[: MAX_EMAIL_CHARS + 1],
                                  settings.rate_limit_login_per_minute)
    if refused is not None:
        log.warning("login rate limited", extra={"client_ip": client_ip})
        raise TooManyRequests(TOO_MANY_LOGINS, headers=refused.headers())
    user = authenticate(session, email=email, password=password)
    pair = issue_tokens(session, user, settings=settings)
    session.commit()
    return pair


# --- tokens -----------------------------------------------------------------------------------


def issue_tokens(session: Session, user: User, *, family_id: str | None = None,
                 settings: Settings | None = None) -> TokenPair:
    """A new access token and a new refresh token (stored as a hash) in `family_id` or a new family."""
    settings = settings or get_settings()
    assert user.id is not None
    raw = new_refresh_token()
    session.add(RefreshToken(
        user_id=user.id, token_hash=hash_token(raw), family_id=family_id or uuid.uuid4().hex,
        expires_at=now_utc() + timedelta(days=settings.refresh_token_days)))
    return TokenPair(access_token=create_access_token(user.id, user.role.value), refresh_token=raw,
                     expires_in=settings.access_token_minutes * 60)


def _revoke_family(session: Session, family_id: str) -> None:
    session.exec(update(RefreshToken)  # type: ignore[call-overload]
                 .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
                 .values(revoked_at=now_utc()))


def refresh(session: Session, raw_token: str, *, settings: Settings | None = None) -> TokenPair:
    """Rotate a refresh token: the old one stops working, the new pair continues its family.

    Presenting a token that was already rotated means it leaked (or a client replayed it): the whole
    family is revoked, so the thief's and the owner's descendants both stop working (C18).
    """
    settings = settings or get_settings()
    unauthorized = Unauthorized(INVALID_REFRESH, headers={"WWW-Authenticate": "Bearer"})
    # An access token (a JWT) or any other string is never a refresh token.
    if not raw_token.startswith(REFRESH_PREFIX) or len(raw_token) > 256:
        raise unauthorized
    token = session.exec(select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw_token))).first()
    if token is None or token.revoked_at is not None:
        raise unauthorized
    now = now_utc()
    if token.rotated_at is not None:
        log.warning("rotated refresh token reused; revoking its family",
                    extra={"user_id": token.user_id, "family_id": token.family_id})
        _revoke_family(session, token.family_id)
        session.commit()
        raise unauthorized
    if token.expires_at <= now:
        raise unauthorized
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise unauthorized
    # Conditional update: of two concurrent refreshes with one token only one rotates it; the other is
    # treated as a reuse.
    rotated = session.exec(update(RefreshToken)  # type: ignore[call-overload]
                           .where(col(RefreshToken.id) == token.id, col(RefreshToken.rotated_at).is_(None),
                                  col(RefreshToken.revoked_at).is_(None))
                           .values(rotated_at=now))
    if rotated.rowcount != 1:
        _revoke_family(session, token.family_id)
        session.commit()
        raise unauthorized
    pair = issue_tokens(session, user, family_id=token.family_id, settings=settings)
    session.commit()
    return pair


def logout(session: Session, *, refresh_token: str | None, user: User | None) -> None:
    """Revoke the login session the refresh token belongs to (its whole family). Idempotent.

    Called with only an access token (no refresh token), every refresh token of that user is revoked:
    the caller cannot say which session it means, so all of them end.
    """
    if refresh_token:
        token = session.exec(select(RefreshToken)
                             .where(RefreshToken.token_hash == hash_token(refresh_token))).first()
        if token is not None:
            _revoke_family(session, token.family_id)
    elif user is not None:
        session.exec(update(RefreshToken)  # type: ignore[call-overload]
                     .where(col(RefreshToken.user_id) == user.id, col(RefreshToken.revoked_at).is_(None))
                     .values(revoked_at=now_utc()))
    else:
        raise Unauthorized("Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    session.commit()


# --- API keys ---------------------------------------------------------------------------------


def create_api_key(session: Session, user: User, name: str) -> tuple[ApiKey, str]:
    """A new key for a client: (row, full key). Only the hash is stored; the key is shown once."""
    active = session.exec(select(func.count()).select_from(ApiKey)
                          .where(ApiKey.user_id == user.id, col(ApiKey.revoked_at).is_(None))).one()
    if active >= MAX_ACTIVE_API_KEYS:
        raise Conflict(f"At most {MAX_ACTIVE_API_KEYS} active API keys per account; revoke one first")
    raw, prefix = new_api_key()
    assert user.id is not None
    key = ApiKey(user_id=user.id, name=name, prefix=prefix, key_hash=hash_token(raw))
    session.add(key)
    session.commit()
    session.refresh(key)
    return key, raw


def list_api_keys(session: Session, user: User) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).where(ApiKey.user_id == user.id).order_by(col(ApiKey.id))))


def revoke_api_key(session: Session, user: User, key_id: int) -> None:
    """Revoke one of the caller's keys (idempotent); another user's key is 404, as if absent."""
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != user.id:
        raise NotFound("API key not found")
    if key.revoked_at is None:
        key.revoked_at = now_utc()
        session.add(key)
        session.commit()


def resolve_api_key(session: Session, raw_key: str | None) -> ApiKey | None:
    """The active key for a raw `X-API-Key` value, or None (unknown, revoked, or owner inactive).

    One keyed hash and one indexed lookup whatever the input, no string comparison of secrets.
    `last_used_at` is written at most once a minute per key, as a conditional UPDATE in the caller's
    session: this never commits, the caller's unit of work does.
    """
    raw = raw_key or ""
    digest = hash_token(raw[:MAX_API_KEY_CHARS])
    if not raw.startswith(API_KEY_PREFIX) or len(raw) > MAX_API_KEY_CHARS:
        return None
    row = session.exec(
        select(ApiKey).join(User, col(User.id) == col(ApiKey.user_id))
        .where(ApiKey.key_hash == digest, col(ApiKey.revoked_at).is_(None), col(User.is_active).is_(True))
    ).first()
    if row is None:
        return None
    now = now_utc()
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
        session.exec(update(ApiKey)  # type: ignore[call-overload]
                     .where(col(ApiKey.id) == row.id,
                            or_(col(ApiKey.last_used_at).is_(None),
                                col(ApiKey.last_used_at) <= now - LAST_USED_RESOLUTION))
                     .values(last_used_at=now)
                     .execution_options(synchronize_session=False))
        row.last_used_at = now
    return row


# --- the admin account ------------------------------------------------------------------------


def ensure_admin(session: Session, settings: Settings | None = None) -> User | None:
    """Create the admin account from ADMIN_EMAIL / ADMIN_PASSWORD when it does not exist yet.

    Idempotent and safe when two processes start at once (the loser's insert hits the unique email
    and is rolled back to a savepoint). An existing account is never changed: its password is not
    reset, and a non-admin account that happens to use ADMIN_EMAIL is NOT promoted (that would hand
    the pool to whoever registered the address); that case is logged and None returned.
    Does not commit: the caller (bootstrap) does.
    """
    settings = settings or get_settings()
    email = normalise_email(settings.admin_email)
    existing = get_user_by_email(session, email)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(User(email=email, password_hash=hash_password(settings.admin_password),
                                 role=Role.admin))
        except IntegrityError:
            log.info("admin account created concurrently by another process")
        existing = get_user_by_email(session, email)
        if existing is not None and existing.role == Role.admin:
            log.info("admin account ready", extra={"email": email})
    if existing is None:
        return None
    if existing.role != Role.admin:
        log.error("ADMIN_EMAIL belongs to a non-admin account; it is not promoted. Set another ADMIN_EMAIL.",
                  extra={"email": email})
        return None
    return existing
