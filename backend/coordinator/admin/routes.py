"""HTTP routes of the admin domain."""

from fastapi import APIRouter

router = APIRouter()
