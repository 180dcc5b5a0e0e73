"""HTTP routes of the emission domain (admin only): today's status and a manual run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from backend.coordinator.deps import AdminUser, SessionDep
from backend.coordinator.emission import service
from backend.models import AdminAction

router = APIRouter(prefix="/admin/emission", tags=["admin"])


@router.get("/status")
def emission_status(_: AdminUser, session: SessionDep) -> dict[str, Any]:
    """Today's cap, emitted and remaining tokens, the last run, the next scheduled run, and the
    per-worker breakdown (`per_worker_source`: "run" for today's run, "preview" before it)."""
    return service.emission_status(session)


@router.post("/run-now")
def emission_run_now(admin: AdminUser, session: SessionDep) -> dict[str, Any]:
    """Run today's emission now; a second run the same day (or after the scheduled one) pays nothing."""
    result = service.run_emission(session, trigger="manual")
    if result["ran"]:
        session.add(AdminAction(actor_user_id=admin.id, action="emission_run", target_type="emission",  # type: ignore[arg-type]
                                target_id=0, reason=result["message"][:500]))
    session.commit()
    return result
