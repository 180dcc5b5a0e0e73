"""HTTP routes of the me domain: the caller's own account. (/me/balance and /me/ledger live in ledger.)"""

from fastapi import APIRouter

from backend.coordinator.deps import CurrentUser
from backend.coordinator.me.schemas import MeOut

router = APIRouter(tags=["me"])


@router.get("/me", response_model=MeOut)
def me(user: CurrentUser) -> MeOut:
    return MeOut.model_validate(user)
