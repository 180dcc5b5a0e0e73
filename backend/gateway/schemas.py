"""Request and response bodies of the gateway's /v1 routes.

Native routes (`/v1/embed`, `/v1/rank`) forbid unknown fields (a typo such as `"txt"` is a 422 naming
it, not a silently empty request). The client-compatible routes (`/v1/embeddings`, `/v1/rerank`) ignore
unknown fields, because the OpenAI and Cohere SDKs send optional parameters (`user`, `max_tokens_per_doc`,
...) that do not change the result here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from backend.gateway.validation import check_embed_text, check_rank_count, check_rank_text

MODEL_ID = "all-MiniLM-L6-v2"
MODEL_ALIASES = {MODEL_ID, "sentence-transformers/all-MiniLM-L6-v2"}
EMBEDDING_DIMENSIONS = 384
MODEL_MAX_TOKENS = 256

EmbedText = Annotated[str, AfterValidator(check_embed_text)]
RankText = Annotated[str, AfterValidator(check_rank_text)]


# -- native ----------------------------------------------------------------------------------------
class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "OpenMesh é uma rede distribuída."}]})

    text: EmbedText = Field(description="Text to embed: non-empty, no NUL, ≤ MAX_TEXT_CHARS (20,000) "
                                        "characters. Longer than 256 word pieces is truncated by the model.")


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"query": "infra distribuída", "texts": ["OpenMesh", "banco relacional", "fila assíncrona"]}]})

    query: EmbedText = Field(description="Non-empty query, ≤ MAX_TEXT_CHARS characters.")
    texts: list[RankText] = Field(description="1..MAX_RANK_TEXTS (32) texts, each non-empty and "
                                              "≤ MAX_RANK_TEXT_CHARS (10,000) characters.")

    @field_validator("texts")
    @classmethod
    def _count(cls, v: list[str]) -> list[str]:
        return check_rank_count(v, "texts")


class JobResponse(BaseModel):
    """The verified job, as the coordinator reports it."""

    model_config = ConfigDict(extra="allow")

    job_id: int | str
    status: str | None = Field(default=None, examples=["verified"])
    output: dict[str, Any] = Field(description="embed: {embedding: [384 floats]}; "
                                               "rank: {indices: [...], scores: [...]}")
    usage: dict[str, Any] | None = Field(default=None, description="{tokens, truncated}")
    price: Any = Field(default=None, description="Tokens charged (decimal string)")
    verification: dict[str, Any] | None = None


# -- OpenAI ----------------------------------------------------------------------------------------
class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "examples": [{"model": MODEL_ID, "input": ["hello", "world"], "encoding_format": "float"}]})

    input: Any = Field(
        description="A string or a list of 1..MAX_EMBEDDING_INPUTS (256) strings. Token-id arrays are "
                    "refused (400).",
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
    model: str = Field(default=MODEL_ID, description=f"`{MODEL_ID}` (or `sentence-transformers/{MODEL_ID}`)")
    encoding_format: Any = Field(default=None, description="`float` (default) or `base64` "
                                                           "(little-endian float32, 1,536 bytes)")
    dimensions: Any = Field(default=None, description=f"Absent or {EMBEDDING_DIMENSIONS}")
    user: Any = None


class EmbeddingItem(BaseModel):
    object: str = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: str = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingsUsage


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "openmesh-pool"


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


# -- Cohere ----------------------------------------------------------------------------------------
class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "examples": [{"model": MODEL_ID, "query": "infra distribuída",
                      "documents": ["OpenMesh", "banco relacional", "fila assíncrona"], "top_n": 2}]})

    model: str | None = Field(default=None, description=f"`{MODEL_ID}` (optional)")
    query: EmbedText
    documents: list[RankText] = Field(description="1..MAX_RANK_TEXTS strings (or `{\"text\": ...}` objects)")
    top_n: int | None = Field(default=None, ge=1, description="Return only the best N results")
    return_documents: bool = False

    @field_validator("documents", mode="before")
    @classmethod
    def _unwrap(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [d["text"] if isinstance(d, dict) and "text" in d else d for d in v]
        return v

    @field_validator("documents")
    @classmethod
    def _count(cls, v: list[str]) -> list[str]:
        return check_rank_count(v, "documents")


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: dict[str, str] | None = None


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult]
    meta: dict[str, Any]
