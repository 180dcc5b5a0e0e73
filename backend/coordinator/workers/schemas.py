"""Request and response bodies of the worker API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.core.canonical import b64url_decode


class WorkerRegister(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    region: str = Field(default="", max_length=64)
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, base64url (padding optional)")
    specs_json: dict[str, Any] = Field(default_factory=dict)

    @field_validator("public_key")
    @classmethod
    def _key_is_32_bytes(cls, v: str) -> str:
        try:
            raw = b64url_decode(v)
        except ValueError as exc:
            raise ValueError(f"public_key is not base64url: {exc}") from None
        if len(raw) != 32:
            raise ValueError(f"public_key must decode to 32 bytes (an Ed25519 key), got {len(raw)}")
        return v.rstrip("=")

    @field_validator("specs_json")
    @classmethod
    def _specs(cls, v: dict[str, Any]) -> dict[str, Any]:
        def num(key: str, lo: float, hi: float) -> None:
            if key in v:
                x = v[key]
                if isinstance(x, bool) or not isinstance(x, int | float) or not lo <= x <= hi:
                    raise ValueError(f"specs_json.{key} must be a number in [{lo}, {hi}]")

        num("reputation", 0, 1)
        num("estimated_latency_ms", 0, 600_000)
        num("max_concurrency", 1, 256)
        if "max_concurrency" in v and not isinstance(v["max_concurrency"], int):
            raise ValueError("specs_json.max_concurrency must be an integer")
        if len(str(v)) > 4000:
            raise ValueError("specs_json is too large (4000 characters at most)")
        return v


class WorkerRef(BaseModel):
    worker_id: int


class ReasonBody(BaseModel):
    reason: str = Field(default="", max_length=500)


class WorkerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    owner_user_id: int
    status: str
    region: str
    specs_json: dict[str, Any]
    public_key: str | None
    last_seen_at: datetime | None
    reputation: float
    estimated_latency_ms: float
    max_concurrency: int
    verified_count: int
    rejected_count: int
    banned_reason: str | None = None
    active_assignments: int = 0
    heartbeat_age_seconds: float | None = None


class HeartbeatOut(BaseModel):
    worker_id: int
    last_seen_at: datetime
    status: str
