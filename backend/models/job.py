"""Jobs and their assignments to workers (each with a single-use nonce and a lease)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.money import Money
from backend.core.security import now_utc


class JobType(StrEnum):
    embed = "embed"
    rank = "rank"


class JobStatus(StrEnum):
    queued = "queued"
    """Waiting for its assignments to be computed."""
    disputed = "disputed"
    """Results disagreed; extra workers are settling it."""
    verified = "verified"
    """Two results agreed (or an audit matched); the output is final and charged."""
    failed = "failed"
    """No agreement within the replica limit, or past its deadline; nothing charged."""
    cancelled = "cancelled"
    """Cancelled by the gateway (timeout) or an admin; nothing charged."""


TERMINAL_JOB_STATUSES = (JobStatus.verified, JobStatus.failed, JobStatus.cancelled)


class Job(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    job_type: JobType = Field(index=True)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    client_user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    api_key_id: int | None = Field(default=None, foreign_key="apikey.id", index=True)
    request_id: str | None = None
    is_audit: bool = Field(default=False, index=True)
    is_demo: bool = False
    expected_output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """Known answer of an audit job (a result verified earlier by two independent workers)."""
    replicas_needed: int = 2
    price: Decimal = Field(default=Decimal(0), sa_column=Column(Money, nullable=False, default=0))
    units: int = 0
    output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    verification: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """Receipt: method, similarity, the agreeing workers with their signatures and output hashes."""
    error: str | None = None
    created_at: datetime = Field(default_factory=now_utc, index=True)
    deadline_at: datetime
    finished_at: datetime | None = None


class AssignmentStatus(StrEnum):
    pending = "pending"
    """Created for a worker, not yet handed out by a poll."""
    running = "running"
    """Handed out; the worker holds it until its lease expires."""
    submitted = "submitted"
    """A signed result was accepted and is waiting for a peer to compare with."""
    accepted = "accepted"
    """The result agreed with the verified answer."""
    rejected = "rejected"
    """The result disagreed with the verified answer (or the audit's known answer)."""
    expired = "expired"
    """The lease ran out before a valid submission; the job went to another worker."""
    cancelled = "cancelled"
    """The job ended before this assignment was needed."""


OPEN_ASSIGNMENT_STATUSES = (AssignmentStatus.pending, AssignmentStatus.running)


class Assignment(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("job_id", "worker_id"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    nonce: str
    status: AssignmentStatus = Field(default=AssignmentStatus.pending, index=True)
    created_at: datetime = Field(default_factory=now_utc)
    leased_at: datetime | None = None
    lease_expires_at: datetime | None = Field(default=None, index=True)
    submitted_at: datetime | None = None
    output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    output_hash: str | None = None
    signature: str | None = None
    error_message: str | None = None
    metrics_json: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    similarity: float | None = None
    """Agreement with the verified answer (cosine for embed, 1 - max score gap for rank)."""
    reject_reason: str | None = None
