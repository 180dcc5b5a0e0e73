"""Client API keys: only a hash and a display prefix are stored."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.core.security import now_utc


class ApiKey(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    prefix: str
    key_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=now_utc)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
