"""HTTP routes of the jobs domain."""

from fastapi import APIRouter

router = APIRouter()
