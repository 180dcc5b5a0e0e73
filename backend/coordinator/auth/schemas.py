"""Request and response bodies of the auth domain (/auth/*)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.core.security import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS

MAX_EMAIL_CHARS = 320
MAX_API_KEY_NAME_CHARS = 100
# Refresh tokens are ~47 characters; anything far longer is not one of ours.
MAX_TOKEN_CHARS = 1024

# A pragmatic address check (email-validator is not a dependency): one "@", a local part of at most
# 64 characters, a dotted domain of non-empty labels, no whitespace or control characters.
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def normalise_email(value: str) -> str:
    """Emails are compared and stored lowercased and trimmed, an internationalised domain in its ASCII
    (punycode) form: `a@exämple.com` and `a@xn--exmple-cua.com` are one address, hence one account."""
    email = value.strip().lower()
    local, sep, domain = email.rpartition("@")
    if sep and domain and not domain.isascii():
        try:
            email = f"{local}@{domain.encode('idna').decode('ascii').lower()}"
        except UnicodeError:
            pass  # validate_email refuses it
    return email


def legacy_email_form(value: str) -> str:
    """How addresses were stored before domains were kept in punycode (trimmed and lowercased)."""
    return value.strip().lower()


def validate_email(value: str) -> str:
    email = normalise_email(value)
    if len(email) > MAX_EMAIL_CHARS:
        raise ValueError(f"Email must be at most {MAX_EMAIL_CHARS} characters")
    local, sep, domain = email.rpartition("@")
    if not sep or not local or not domain:
        raise ValueError("Not a valid email address")
    if len(local) > 64 or not _LOCAL_RE.match(local) or local.startswith(".") or local.endswith(".") \
            or ".." in local:
        raise ValueError("Not a valid email address")
    try:
        # Internationalised domains are accepted in their ASCII (punycode) form.
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("Not a valid email address") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError("Not a valid email address")
    return email


# The passwords tried first by every credential-stuffing list; length alone lets them through.
_COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "passw0rd", "qwertyuiop", "qwerty123", "iloveyou",
    "sunshine", "princess", "football", "baseball", "welcome1", "letmein1", "admin123", "administrator",
    "abc12345", "abcdefgh", "11111111", "12345678", "123456789", "1234567890", "87654321", "00000000",
    "changeme", "trustno1", "dragon123", "monkey123", "superman", "starwars", "whatever",
})


def validate_password(value: str) -> str:
    if len(value) < MIN_PASSWORD_CHARS:
        raise ValueError(f"Password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(value) > MAX_PASSWORD_CHARS:
        raise ValueError(f"Password must be at most {MAX_PASSWORD_CHARS} characters")
    if value.isdigit() or value.lower() in _COMMON_PASSWORDS:
        raise ValueError("Password is too easy to guess: use a longer phrase, not only digits or a common password")
    return value


class RegisterIn(BaseModel):
    email: str = Field(examples=["cliente@seu-dominio.com"])
    password: str = Field(description=f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters",
                          examples=["Troque-por-uma-senha-forte-123"])
    role: Literal["client", "worker_owner"] = Field(
        description="`client` or `worker_owner`; the admin account is created from settings, never here")

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, v: object) -> object:
        return validate_email(v) if isinstance(v, str) else v

    @field_validator("password")
    @classmethod
    def _password(cls, v: str) -> str:
        return validate_password(v)


class LoginIn(BaseModel):
    email: str = Field(max_length=MAX_EMAIL_CHARS)
    password: str = Field(max_length=MAX_PASSWORD_CHARS,
                          description=f"At most {MAX_PASSWORD_CHARS} characters")

    @field_validator("email")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        # No registered email holds a NUL, and PostgreSQL refuses NUL in text parameters (was a 500).
        if "\x00" in v:
            raise ValueError("email must not contain NUL characters")
        return v


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds")


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS)


class ApiKeyCreateIn(BaseModel):
    name: str = Field(description=f"1 to {MAX_API_KEY_NAME_CHARS} characters", examples=["producao-app-1"])

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("Name must not be empty")
        if len(v) > MAX_API_KEY_NAME_CHARS:
            raise ValueError(f"Name must be at most {MAX_API_KEY_NAME_CHARS} characters")
        if not v.isprintable():
            raise ValueError("Name must not contain control characters")
        return v


class ApiKeyCreated(BaseModel):
    id: int
    name: str
    prefix: str
    key: str = Field(description="The full key; shown only once. Send it to the gateway as X-API-Key.")
    created_at: datetime


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]
