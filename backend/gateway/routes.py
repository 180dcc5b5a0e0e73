"""Native gateway routes: /v1/embed, /v1/rank, /v1/jobs/{id} (receipt) and /v1/limits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from backend.core.config import get_settings
from backend.core.jsonresp import FastJSONResponse
from backend.gateway.auth import ApiKey, limit_ip
from backend.gateway.coordinator_client import CoordinatorClient
from backend.gateway.schemas import (
    EMBEDDING_DIMENSIONS,
    MODEL_ID,
    MODEL_MAX_TOKENS,
    EmbedRequest,
    JobResponse,
    RankRequest,
)

router = APIRouter(prefix="/v1", tags=["inference"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, unknown or revoked API key (`Invalid API key`)"},
    402: {"description": "Insufficient balance"},
    413: {"description": "Body larger than MAX_BODY_BYTES"},
    422: {"description": "Invalid input (names the field, e.g. `texts[1]`)"},
    429: {"description": "Rate limit exceeded (Retry-After, X-RateLimit-*)"},
    502: {"description": "Job failed: the workers did not agree"},
    503: {"description": "Verification timeout, or Coordinator unavailable"},
}


def get_coordinator(request: Request) -> CoordinatorClient:
    client = getattr(request.app.state, "coordinator", None)
    if client is None:  # app used without its lifespan (e.g. a bare TestClient): create it once
        client = CoordinatorClient(get_settings(), transport=getattr(request.app.state, "coordinator_transport",
                                                                     None))
        request.app.state.coordinator = client
    return client


Coordinator = Annotated[CoordinatorClient, Depends(get_coordinator)]

_JOB_FIELDS = ("job_id", "status", "output", "usage", "price", "verification")


def job_answer(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job.get(k) for k in _JOB_FIELDS if k in job}


@router.post("/embed", response_model=JobResponse, responses=_ERRORS,
             summary="Embed one text (384-dim all-MiniLM-L6-v2), answered once verified")
async def embed(body: EmbedRequest, api_key: ApiKey, coordinator: Coordinator) -> JSONResponse:
    job = await coordinator.create_job(api_key=api_key, job_type="embed", payload={"text": body.text})
    return FastJSONResponse(job_answer(job))


@router.post("/rank", response_model=JobResponse, responses=_ERRORS,
             summary="Rank texts by relevance to a query, answered once verified")
async def rank(body: RankRequest, api_key: ApiKey, coordinator: Coordinator) -> JSONResponse:
    job = await coordinator.create_job(api_key=api_key, job_type="rank",
                                       payload={"query": body.query, "texts": body.texts})
    return FastJSONResponse(job_answer(job))


@router.get("/jobs/{job_id}", responses={401: _ERRORS[401], 404: {"description": "Not your job"},
                                         429: _ERRORS[429]},
            summary="Receipt of one of your jobs (status, output, verification)")
async def job_receipt(job_id: int, api_key: ApiKey, coordinator: Coordinator) -> JSONResponse:
    return JSONResponse(await coordinator.receipt(api_key=api_key, job_id=job_id))


def published_limits() -> dict[str, Any]:
    s = get_settings()
    return {
        "max_body_bytes": s.max_body_bytes,
        "max_text_chars": s.max_text_chars,
        "max_rank_texts": s.max_rank_texts,
        "max_rank_text_chars": s.max_rank_text_chars,
        "max_embedding_inputs": s.max_embedding_inputs,
        "rate_limit_per_minute_api_key": s.rate_limit_per_minute_api_key,
        "rate_limit_per_minute_ip": s.rate_limit_per_minute_ip,
        "rate_limit_algorithm": "sliding window (at most N requests in any rolling 60 s)",
        "poll_timeout_seconds": s.poll_timeout_seconds,
        "model": {"id": MODEL_ID, "dimensions": EMBEDDING_DIMENSIONS, "max_tokens": MODEL_MAX_TOKENS,
                  "truncation": "texts longer than 256 word pieces are truncated"},
        "statuses": {"413": "body larger than max_body_bytes",
                     "422": "empty/whitespace-only text, NUL, lone surrogate, text over its character "
                            "limit, too many items"},
    }


@router.get("/limits", dependencies=[Depends(limit_ip)], summary="The request limits this gateway enforces")
async def limits() -> dict[str, Any]:
    return published_limits()
