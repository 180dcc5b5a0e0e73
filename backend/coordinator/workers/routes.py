"""HTTP routes of the workers domain."""

from fastapi import APIRouter

router = APIRouter()
