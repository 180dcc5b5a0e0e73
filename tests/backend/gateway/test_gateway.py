"""Gateway behaviour against a fake coordinator: contract, error mapping, ops routes, CORS (C32)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from backend.core.config import Settings
from tests.backend.gateway.conftest import API_KEY, HEADERS, fake_vector


def test_embed_and_rank_follow_the_internal_contract(make_gateway, fake):
    gw = make_gateway(POLL_TIMEOUT_SECONDS="12.5", COORDINATOR_INTERNAL_TOKEN="tok-123")
    r = gw.post("/v1/embed", json={"text": "OpenMesh é uma rede distribuída."},
                headers={**HEADERS, "X-Request-ID": "req-abc-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job_id"] == 1 and body["output"]["embedding"] == fake_vector(1)
    assert set(body) >= {"job_id", "output", "usage", "price", "verification"}
    assert r.headers["X-Request-ID"] == "req-abc-1"
    call = fake.calls[0]
    assert call["path"] == "/internal/jobs"
    assert call["body"] == {"api_key": API_KEY, "job_type": "embed",
                            "payload": {"text": "OpenMesh é uma rede distribuída."}, "wait_seconds": 12.5}
    assert call["headers"]["x-internal-token"] == "tok-123"
    assert call["headers"]["x-request-id"] == "req-abc-1"

    r = gw.post("/v1/rank", json={"query": "infra", "texts": ["OpenMesh", "banco relacional", "fila"]},
                headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200, r.text
    assert r.json()["output"]["indices"] == [2, 0, 1]
    assert fake.calls[1]["body"]["payload"] == {"query": "infra", "texts": ["OpenMesh", "banco relacional", "fila"]}
    assert fake.calls[1]["body"]["job_type"] == "rank"


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}, {"X-API-Key": "bad key with spaces"}])
def test_missing_or_malformed_key_is_401(make_gateway, fake, headers):
    gw = make_gateway()
    r = gw.post("/v1/embed", json={"text": "a"}, headers=headers)
    assert r.status_code == 401 and r.json() == {"detail": "Invalid API key"}
    r = gw.post("/v1/embeddings", json={"input": "a"}, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert fake.calls == []


@pytest.mark.parametrize(("status", "detail"), [
    (401, "Invalid API key"), (402, "Insufficient balance"), (422, "bad payload"),
    (503, "Verification timeout"), (502, "Job failed: no agreement"),
])
def test_coordinator_errors_pass_through(make_gateway, fake, status, detail):
    gw = make_gateway()
    fake.fail_with(status, detail)
    r = gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS)
    assert r.status_code == status and r.json() == {"detail": detail}
    r = gw.post("/v1/embeddings", json={"input": "a"}, headers=HEADERS)
    assert r.status_code == status and r.json()["error"]["message"] == detail
    if status == 503:
        assert r.json()["error"]["code"] == "verification_timeout"
    r = gw.post("/v1/rerank", json={"query": "q", "documents": ["a"]}, headers=HEADERS)
    assert r.status_code == status and r.json()["detail"] == detail and r.json()["message"] == detail


def test_coordinator_unreachable_is_503(make_gateway, fake):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gw = make_gateway(transport=httpx.MockTransport(refuse))
    r = gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS)
    assert r.status_code == 503 and r.json() == {"detail": "Coordinator unavailable"}
    ready = gw.get("/ready")
    assert ready.status_code == 503 and ready.json()["coordinator"] == "unreachable"
    assert gw.get("/health").json()["status"] == "ok"  # liveness does not depend on the coordinator


def test_coordinator_refusing_the_internal_token_is_not_the_clients_fault(make_gateway, fake):
    gw = make_gateway()
    fake.fail_with(401, "Invalid internal token")
    r = gw.post("/v1/embed", json={"text": "a"}, headers=HEADERS)
    assert r.status_code == 503 and r.json() == {"detail": "Coordinator unavailable"}


def test_health_ready_metrics(make_gateway, fake):
    gw = make_gateway()
    assert gw.get("/health").json() == {"status": "ok", "service": "gateway", "rate_limit": "ok"}
    ready = gw.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["rate_limit"] == {"backend": "memory", "status": "ok", "active": "memory"}
    m = gw.get("/metrics")
    assert m.status_code == 200 and "openmesh_http_requests_total" in m.text
    assert gw.get("/docs").status_code == 200
    paths = gw.get("/openapi.json").json()["paths"]
    for p in ("/v1/embed", "/v1/rank", "/v1/embeddings", "/v1/rerank", "/v1/models", "/v1/limits"):
        assert p in paths


def test_metrics_can_be_disabled(make_gateway):
    gw = make_gateway(ENABLE_PROMETHEUS_METRICS="false")
    assert gw.get("/metrics").status_code == 404


def test_models_and_limits(make_gateway):
    gw = make_gateway(RATE_LIMIT_PER_MINUTE_IP="77")
    models = gw.get("/v1/models")
    assert models.status_code == 200
    assert models.json()["object"] == "list"
    assert [m["id"] for m in models.json()["data"]] == ["all-MiniLM-L6-v2"]
    assert models.headers["X-RateLimit-Limit"] == "77"
    assert gw.get("/v1/models/all-MiniLM-L6-v2").json()["id"] == "all-MiniLM-L6-v2"
    assert gw.get("/v1/models/gpt-4").json()["error"]["code"] == "model_not_found"
    limits = gw.get("/v1/limits").json()
    assert limits["rate_limit_per_minute_ip"] == 77 and limits["max_rank_text_chars"] == 10_000


def test_rerank_cohere_v2_shape(make_gateway, fake):
    gw = make_gateway()
    docs = ["a much longer document", "short", {"text": "mid size"}]
    r = gw.post("/v1/rerank", json={"model": "all-MiniLM-L6-v2", "query": "q", "documents": docs,
                                    "top_n": 2, "return_documents": True}, headers=HEADERS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "1"
    assert [x["index"] for x in body["results"]] == [1, 2]
    scores = [x["relevance_score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["results"][0]["document"] == {"text": "short"}
    assert body["meta"]["billed_units"] == {"search_units": 1}
    assert fake.calls[0]["body"]["payload"] == {"query": "q", "texts": ["a much longer document", "short", "mid size"]}
    r = gw.post("/v1/rerank", json={"query": "q", "documents": ["x", "y"]}, headers=HEADERS)
    assert all("document" not in x for x in r.json()["results"]) and len(r.json()["results"]) == 2
    r = gw.post("/v1/rerank", json={"query": "q", "documents": ["x", ""]}, headers=HEADERS)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "documents[1]"
    r = gw.post("/v1/rerank", json={"model": "rerank-v3.5", "query": "q", "documents": ["x"]}, headers=HEADERS)
    assert r.status_code == 404


# -- C32 -------------------------------------------------------------------------------------------
def test_C32_cors_only_for_listed_origins(make_gateway, fake):
    gw = make_gateway(CORS_ALLOW_ORIGINS="https://dashboard.example.com")
    pre = {"Access-Control-Request-Method": "GET"}
    evil = gw.options("/v1/embed", headers={"Origin": "https://evil.example", **pre})
    assert "access-control-allow-origin" not in evil.headers
    evil_post = gw.post("/v1/embed", json={"text": "a"}, headers={**HEADERS, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil_post.headers
    good = gw.options("/v1/embed", headers={"Origin": "https://dashboard.example.com", **pre})
    assert good.headers["access-control-allow-origin"] == "https://dashboard.example.com"
    good_post = gw.post("/v1/embed", json={"text": "a"},
                        headers={**HEADERS, "Origin": "https://dashboard.example.com"})
    assert good_post.headers["access-control-allow-origin"] == "https://dashboard.example.com"
    assert "X-RateLimit-Remaining" in good_post.headers["access-control-expose-headers"]


def test_C32_wildcard_with_credentials_refuses_to_start():
    with pytest.raises(ValidationError, match="cannot be combined"):
        Settings(cors_allow_origins="*", cors_allow_credentials=True)


def test_C32_wildcard_without_credentials_never_sends_credentials(make_gateway):
    gw = make_gateway(CORS_ALLOW_ORIGINS="*")
    r = gw.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
