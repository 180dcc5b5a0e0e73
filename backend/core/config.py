"""Settings for the coordinator and the gateway: every variable from SPEC.md, with working defaults."""

from __future__ import annotations

import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_TOKEN = "dev-internal-token-change-me"
DEV_ADMIN_PASSWORD = "admin-dev-password-123"
DATA_DIR = Path.cwd() / ".openmesh"


def _jwt_secret_from_file() -> str:
    """A per-install secret kept in .openmesh/jwt_secret, generated on first start."""
    path = DATA_DIR / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"

    # Storage
    database_url: str = f"sqlite:///{DATA_DIR / 'openmesh.db'}"
    redis_url: str | None = None
    redis_prefix: str = "openmesh"
    run_migrations: bool = True

    # Secrets
    jwt_secret: str = ""
    jwt_algorithm: Literal["HS256"] = "HS256"
    access_token_minutes: int = 15
    refresh_token_days: int = 14
    coordinator_internal_token: str = DEV_INTERNAL_TOKEN
    # Accepted alongside the current token while a rotation is under way.
    coordinator_internal_token_previous: str | None = None
    admin_email: str = "admin@openmesh.local"
    admin_password: str = DEV_ADMIN_PASSWORD

    # Network
    coordinator_url: str = "http://127.0.0.1:8001"
    gateway_url: str = "http://127.0.0.1:8002"
    cors_allow_origins: str = "http://localhost:3000,http://127.0.0.1:3000"
    cors_allow_credentials: bool = False
    trusted_proxies: str = ""
    admin_ip_allowlist: str = ""
    max_body_bytes: int = 1_048_576

    # Gateway
    rate_limit_per_minute_api_key: int = 600
    rate_limit_per_minute_ip: int = 1200
    rate_limit_login_per_minute: int = 10
    poll_timeout_seconds: float = 30.0
    max_text_chars: int = 20_000
    max_rank_texts: int = 32
    max_rank_text_chars: int = 10_000
    max_embedding_inputs: int = 256
    enable_prometheus_metrics: bool = True

    # Workers and verification
    heartbeat_timeout_seconds: float = 30.0
    heartbeat_write_interval_seconds: float = Field(default=1.0, ge=0)
    """An online worker heard from again within this many seconds is not written again (its
    heartbeats, polls and submits all count as liveness; the timeout is measured in tens of seconds)."""
    assignment_lease_seconds: float = 30.0
    job_deadline_seconds: float = 120.0
    similarity_threshold: float = 0.9999
    rank_score_tolerance: float = 1e-4
    replicas: int = 2
    max_extra_replicas: int = 3
    audit_rate: float = 0.05
    initial_reputation: float = Field(default=0.5, ge=0, le=1)
    """Where every new worker starts; a declared `specs_json.reputation` can only be lower."""
    reputation_verified_delta: float = 0.01
    reputation_rejected_delta: float = 0.05
    fraud_threshold: int = 2
    sweep_interval_seconds: float = 2.0
    adaptive_replication: bool = False
    adaptive_min_reputation: float = 0.95
    adaptive_recheck_rate: float = 0.2
    scheduler_enabled: bool = True

    # Money
    unit_cost_embed: Decimal = Decimal("0.001")
    unit_cost_rank: Decimal = Decimal("0.001")
    unit_chars: int = 1000
    min_charge: Decimal = Decimal("0.001")
    pool_fee_bps: int = Field(default=1000, ge=0, le=10_000)
    emission_base_tokens: Decimal = Decimal("100")
    emission_cap_tokens: Decimal = Decimal("1000")
    emission_time: str = "00:05"
    demo_client_credit: Decimal = Decimal("100")

    @field_validator("database_url")
    @classmethod
    def _normalise_db_url(cls, v: str) -> str:
        # Operators paste postgres:// URLs from their providers; SQLAlchemy wants an explicit driver.
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        if v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://") :]
        return v

    @field_validator("emission_time")
    @classmethod
    def _check_time(cls, v: str) -> str:
        hh, _, mm = v.partition(":")
        if not (hh.isdigit() and mm.isdigit() and 0 <= int(hh) < 24 and 0 <= int(mm) < 60):
            raise ValueError("EMISSION_TIME must be HH:MM (24 h, UTC)")
        return v

    @model_validator(mode="after")
    def _secrets_and_safety(self) -> Settings:
        if not self.jwt_secret:
            self.jwt_secret = _jwt_secret_from_file()
        if len(self.jwt_secret.encode()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 bytes")
        origins = self.cors_origins
        if "*" in origins and self.cors_allow_credentials:
            raise ValueError("CORS_ALLOW_ORIGINS='*' cannot be combined with CORS_ALLOW_CREDENTIALS=true")
        if self.environment == "production":
            unsafe = []
            if self.coordinator_internal_token == DEV_INTERNAL_TOKEN:
                unsafe.append("COORDINATOR_INTERNAL_TOKEN")
            if self.admin_password == DEV_ADMIN_PASSWORD:
                unsafe.append("ADMIN_PASSWORD")
            if unsafe:
                raise ValueError(
                    f"{', '.join(unsafe)} still at the development default; set real secrets for production"
                )
        return self

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allow_origins.split(",") if o.strip()]

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def admin_allowlist(self) -> list[str]:
        return [p.strip() for p in self.admin_ip_allowlist.split(",") if p.strip()]

    @property
    def internal_tokens(self) -> list[str]:
        tokens = [self.coordinator_internal_token]
        if self.coordinator_internal_token_previous:
            tokens.append(self.coordinator_internal_token_previous)
        return tokens

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
