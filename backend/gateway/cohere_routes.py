"""Cohere-compatible rerank (v2 shape): POST /v1/rerank, backed by one verified rank job.

`relevance_score` is the verified cosine similarity between the query's and the document's
all-MiniLM-L6-v2 embeddings (in [-1, 1]); results are ordered by it (ties: lower index first) and cut
to `top_n`. Errors use the gateway's `{"detail": ...}` shape plus a `message` field (what Cohere's
clients read).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from backend.core.errors import DomainError, NotFound
from backend.core.http import _validation_payload
from backend.gateway.auth import ApiKey
from backend.gateway.openai_errors import _message
from backend.gateway.routes import _ERRORS, Coordinator
from backend.gateway.schemas import MODEL_ALIASES, MODEL_ID, RerankRequest, RerankResponse


class CohereRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except RequestValidationError as exc:
                status, payload = _validation_payload(exc)
                return JSONResponse({**payload, "message": _message(payload["detail"])}, status_code=status)
            except (DomainError, HTTPException) as exc:
                return JSONResponse({"detail": exc.detail, "message": _message(exc.detail)},
                                    status_code=exc.status_code, headers=exc.headers)

        return handler


router = APIRouter(prefix="/v1", tags=["cohere-compatible"], route_class=CohereRoute)


def rerank_results(output: dict[str, Any], documents: list[str], top_n: int | None,
                   return_documents: bool) -> list[dict[str, Any]]:
    pairs = [(int(i), float(s)) for i, s in zip(output.get("indices") or [], output.get("scores") or [],
                                               strict=False)]
    pairs.sort(key=lambda p: (-p[1], p[0]))
    if top_n is not None:
        pairs = pairs[:top_n]
    results = []
    for index, score in pairs:
        item: dict[str, Any] = {"index": index, "relevance_score": score}
        if return_documents and 0 <= index < len(documents):
            item["document"] = {"text": documents[index]}
        results.append(item)
    return results


@router.post("/rerank", response_model=RerankResponse, response_model_exclude_none=True, responses=_ERRORS,
             summary="Cohere-compatible rerank (v2 shape)")
async def rerank(body: RerankRequest, api_key: ApiKey, coordinator: Coordinator) -> JSONResponse:
    if body.model is not None and body.model not in MODEL_ALIASES:
        raise NotFound(f"The model `{body.model}` does not exist; this pool serves `{MODEL_ID}`")
    job = await coordinator.create_job(api_key=api_key, job_type="rank",
                                       payload={"query": body.query, "texts": body.documents})
    results = rerank_results(job.get("output") or {}, body.documents, body.top_n, body.return_documents)
    usage = job.get("usage") or {}
    meta: dict[str, Any] = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    if usage.get("tokens") is not None:
        meta["tokens"] = {"input_tokens": usage["tokens"]}
    meta["openmesh"] = {"job_id": job.get("job_id"), "price": job.get("price"),
                        "verification": job.get("verification"), "usage": usage}
    return JSONResponse({"id": str(job.get("job_id")), "results": results, "meta": meta})
