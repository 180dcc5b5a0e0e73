"""Bodies of the worker job API and the gateway's internal job API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from backend.models import JobType


class PollIn(BaseModel):
    worker_id: int
    wait_seconds: float = Field(default=0, ge=0, le=30, description="Long-poll: hold until work arrives")


class PollBatchIn(PollIn):
    max_items: int = Field(default=16, ge=1, le=64)


class SubmitItem(BaseModel):
    assignment_id: int
    nonce: str = Field(max_length=200)
    signature: str = Field(max_length=400)
    output: dict[str, Any] | None = None
    output_hash: str = Field(max_length=128)
    error_message: str | None = Field(default=None, max_length=2000)
    metrics_json: dict[str, Any] | None = None


class SubmitIn(SubmitItem):
    worker_id: int


class SubmitBatchIn(BaseModel):
    """A worker's batch of results in one request and one transaction; each is answered on its own."""

    worker_id: int
    # As many as a poll-batch hands out; 64 embeddings (~8 KB of JSON each) stay well under MAX_BODY_BYTES.
    results: list[SubmitItem] = Field(min_length=1, max_length=64)


class InternalJobIn(BaseModel):
    api_key: str = Field(max_length=200)
    job_type: JobType
    payload: dict[str, Any]
    wait_seconds: float = Field(default=30, ge=0, le=300)


class InternalBatchIn(BaseModel):
    api_key: str = Field(max_length=200)
    job_type: JobType
    payloads: list[dict[str, Any]] = Field(min_length=1, max_length=256)
    wait_seconds: float = Field(default=30, ge=0, le=300)


class ApiKeyIn(BaseModel):
    api_key: str = Field(max_length=200)


class DemoIn(BaseModel):
    count: int = Field(default=5, ge=1, le=100)
    job_type: JobType | None = None


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=500)
