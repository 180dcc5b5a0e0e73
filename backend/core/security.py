"""Passwords (argon2), JWT access tokens, opaque refresh tokens and API keys stored as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from passlib.context import CryptContext

from backend.core.config import get_settings

# argon2 has no 72-byte cut (bcrypt's) and no version-detection pitfalls.
_pwd = CryptContext(schemes=["argon2"], deprecated="auto")
# Verified against for unknown emails so a login takes the same time whether or not the user exists.
DUMMY_HASH = _pwd.hash("timing-equaliser-not-a-password")

API_KEY_PREFIX = "om_"
REFRESH_PREFIX = "omr_"
MAX_PASSWORD_CHARS = 256
MIN_PASSWORD_CHARS = 8


def hash_password(password: str) -> str:
    return _pwd.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _pwd.verify(password, password_hash)
    except (ValueError, TypeError):
        return False


def now_utc() -> datetime:
    """Aware UTC now: SQLModel stores and returns aware UTC datetimes on SQLite and PostgreSQL alike."""
    return datetime.now(UTC)


def create_access_token(user_id: int, role: str) -> str:
    s = get_settings()
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "role": role, "type": "access", "iat": now,
              "exp": now + timedelta(minutes=s.access_token_minutes), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, s.jwt_secret, algorithm=s.jwt_algorithm)


def decode_access_token(token: str) -> dict[str, Any] | None:
    """Claims of a valid access token, or None. The algorithm list is pinned: no `none`, no HS512."""
    s = get_settings()
    try:
        claims = jwt.decode(token, s.jwt_secret, algorithms=[s.jwt_algorithm],
                            options={"require": ["exp", "sub", "type"]})
    except jwt.PyJWTError:
        return None
    if claims.get("type") != "access":
        return None
    return claims


def hash_token(token: str) -> str:
    """Keyed hash of a high-entropy secret (API key or refresh token); only this is stored."""
    return hmac.new(b"openmesh-token-v1", token.encode("utf-8"), hashlib.sha256).hexdigest()


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_api_key() -> tuple[str, str]:
    """(full key, display prefix). The prefix lets a user tell keys apart without the secret."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(API_KEY_PREFIX) + 8]


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_nonce() -> str:
    return secrets.token_urlsafe(24)
