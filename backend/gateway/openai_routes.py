"""OpenAI-compatible routes: POST /v1/embeddings, GET /v1/models, GET /v1/models/{model}.

A script written for OpenAI's embeddings API works unchanged with `base_url=<gateway>/v1` and an
OpenMesh API key. Each input string is one verified embed job (a list goes to the coordinator's batch
call, answered in order). Every error is an OpenAI error object (see openai_errors.py).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from backend.core.config import get_settings
from backend.gateway.auth import ApiKey, limit_ip
from backend.gateway.openai_errors import OpenAIError, OpenAIRoute
from backend.gateway.routes import Coordinator
from backend.gateway.schemas import (
    EMBEDDING_DIMENSIONS,
    MODEL_ALIASES,
    MODEL_ID,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelCard,
    ModelList,
)
from backend.gateway.validation import text_problem

router = APIRouter(prefix="/v1", tags=["openai-compatible"], route_class=OpenAIRoute)

TOKEN_IDS_MESSAGE = ("token-id input is not supported; send strings "
                     "(LangChain: check_embedding_ctx_length=False)")


def _err(status: int, message: str, param: str | None, code: str | None = None) -> OpenAIError:
    return OpenAIError(message, status_code=status, param=param, code=code)


def _is_token_ids(item: Any) -> bool:
    return (isinstance(item, int) and not isinstance(item, bool)) or isinstance(item, list)


def parse_inputs(raw: Any) -> tuple[list[str], bool]:
    """The input strings and whether a single string was sent; raises OpenAIError (400/422)."""
    s = get_settings()
    if isinstance(raw, str):
        texts, single = [raw], True
    elif isinstance(raw, list):
        if not raw:
            raise _err(422, "input must not be an empty list", "input", "empty_input")
        if any(_is_token_ids(item) for item in raw):
            raise _err(400, TOKEN_IDS_MESSAGE, "input", "token_ids_not_supported")
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                raise _err(422, f"input[{i}] must be a string", f"input[{i}]", "invalid_type")
        if len(raw) > s.max_embedding_inputs:
            raise _err(422, f"input has {len(raw)} items; at most {s.max_embedding_inputs} inputs per "
                            "request are allowed", "input", "too_many_inputs")
        texts, single = raw, False
    else:
        raise _err(422, "input must be a string or a list of strings", "input", "invalid_type")
    for i, text in enumerate(texts):
        param = "input" if single else f"input[{i}]"
        problem = text_problem(text, s.max_text_chars)
        if problem is not None:
            raise _err(422, f"{param} {problem.message}", param, problem.code)
    return texts, single


def _check_options(body: EmbeddingsRequest) -> str:
    """Validates model, encoding_format and dimensions; returns the encoding format."""
    if body.model not in MODEL_ALIASES:
        raise _err(404, f"The model `{body.model}` does not exist; this pool serves `{MODEL_ID}`",
                   "model", "model_not_found")
    fmt = body.encoding_format if body.encoding_format is not None else "float"
    if fmt not in ("float", "base64"):
        raise _err(400, f"encoding_format must be 'float' or 'base64', not {fmt!r}", "encoding_format",
                   "invalid_encoding_format")
    dims = body.dimensions
    if dims is not None and (isinstance(dims, bool) or dims != EMBEDDING_DIMENSIONS
                             or not isinstance(dims, int | float)):
        raise _err(400, f"dimensions must be {EMBEDDING_DIMENSIONS} (or omitted): {MODEL_ID} only produces "
                        f"{EMBEDDING_DIMENSIONS}-dimensional embeddings", "dimensions", "invalid_dimensions")
    return fmt


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32, as OpenAI's base64 encoding (384 floats → 1,536 bytes)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


@router.post("/embeddings", response_model=EmbeddingsResponse,
             summary="OpenAI-compatible embeddings (string or list of strings)",
             responses={400: {"description": "token-id input, bad encoding_format or dimensions"},
                        401: {"description": "invalid_api_key"}, 402: {"description": "insufficient_quota"},
                        404: {"description": "model_not_found"}, 413: {"description": "body too large"},
                        422: {"description": "invalid input, too many inputs"},
                        429: {"description": "rate_limit_exceeded"}, 503: {"description": "timeout"}})
async def embeddings(body: EmbeddingsRequest, api_key: ApiKey, coordinator: Coordinator) -> JSONResponse:
    fmt = _check_options(body)
    texts, single = parse_inputs(body.input)
    if single:
        results = [await coordinator.create_job(api_key=api_key, job_type="embed", payload={"text": texts[0]})]
    else:
        batch = await coordinator.create_batch(api_key=api_key, job_type="embed",
                                               payloads=[{"text": t} for t in texts])
        results = batch.get("results") or []
        if len(results) != len(texts):
            raise _err(502, "The coordinator answered a different number of results", None, "bad_gateway")
    data = []
    tokens = 0
    for i, job in enumerate(results):
        vector = (job.get("output") or {}).get("embedding") or []
        tokens += int((job.get("usage") or {}).get("tokens") or 0)
        data.append({"object": "embedding", "index": i,
                     "embedding": encode_base64(vector) if fmt == "base64" else vector})
    return JSONResponse({"object": "list", "data": data, "model": MODEL_ID,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


@router.get("/models", response_model=ModelList, dependencies=[Depends(limit_ip)],
            summary="OpenAI-compatible model list")
async def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [ModelCard(id=MODEL_ID).model_dump()]}


@router.get("/models/{model:path}", response_model=ModelCard, dependencies=[Depends(limit_ip)],
            summary="One model")
async def get_model(model: str) -> dict[str, Any]:
    if model not in MODEL_ALIASES:
        raise _err(404, f"The model `{model}` does not exist", "model", "model_not_found")
    return ModelCard(id=MODEL_ID).model_dump()
