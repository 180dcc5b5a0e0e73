"""Response bodies of the me domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class MeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str
    created_at: datetime
    is_active: bool
