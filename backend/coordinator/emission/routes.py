"""HTTP routes of the emission domain."""

from fastapi import APIRouter

router = APIRouter()
