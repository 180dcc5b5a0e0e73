"""Worker machines, their status and reputation, and the uptime buckets used by emission."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.security import now_utc


class WorkerStatus(StrEnum):
    online = "online"
    """Heartbeating and eligible for work."""
    offline = "offline"
    """Silent for longer than the heartbeat timeout (or never seen)."""
    draining = "draining"
    """Finishes what it holds, gets nothing new; a heartbeat does not bring it back."""
    banned = "banned"
    """Reached the fraud threshold or banned by an admin; never gets work."""


class Worker(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    owner_user_id: int = Field(foreign_key="user.id", index=True)
    region: str = Field(default="", max_length=64)
    public_key: str | None = None
    specs_json: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: WorkerStatus = Field(default=WorkerStatus.offline, index=True)
    reputation: float = 0.5
    estimated_latency_ms: float = 1000.0
    max_concurrency: int = 1
    verified_count: int = 0
    rejected_count: int = 0
    last_seen_at: datetime | None = None
    created_at: datetime = Field(default_factory=now_utc)
    banned_reason: str | None = None


class WorkerUptime(SQLModel, table=True):
    """One row per worker per minute in which it heartbeated: the uptime ratio for emission."""

    __table_args__ = (UniqueConstraint("worker_id", "minute"),)
    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    minute: datetime = Field(index=True)


class AdminAction(SQLModel, table=True):
    """Who did what to which worker or job, and why (drain, ban, unban, cancel, requeue, credit)."""

    id: int | None = Field(default=None, primary_key=True)
    actor_user_id: int = Field(foreign_key="user.id", index=True)
    action: str
    target_type: str
    target_id: int
    reason: str = ""
    created_at: datetime = Field(default_factory=now_utc)
