"""Users, their roles, and refresh tokens (stored as hashes only)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from backend.core.security import now_utc


class Role(StrEnum):
    client = "client"
    """Calls the gateway with API keys and pays per verified job."""
    worker_owner = "worker_owner"
    """Registers worker machines and earns rewards and emission."""
    admin = "admin"
    """The pool operator; created from settings, never by self-registration."""


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    password_hash: str
    role: Role = Field(index=True)
    is_active: bool = True
    created_at: datetime = Field(default_factory=now_utc)


class RefreshToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(unique=True, index=True)
    family_id: str = Field(index=True)
    """Every token rotated from one login shares a family; reusing a rotated token revokes the family."""
    created_at: datetime = Field(default_factory=now_utc)
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
