"""Input handling on the gateway: field cases C01, C04, C05, C06, C07."""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import httpx
import pytest

from tests.backend.gateway.conftest import API_KEY, HEADERS, fake_vector

MODEL = "all-MiniLM-L6-v2"


# -- C01 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/embed", {"text": ""}, "text"),
    ("/v1/embed", {"text": " \t\n"}, "text"),
    ("/v1/embeddings", {"model": MODEL, "input": ["a", ""]}, "input[1]"),
    ("/v1/embeddings", {"input": []}, "input"),
    ("/v1/rank", {"query": "q", "texts": []}, "texts"),
    ("/v1/rank", {"query": "", "texts": ["a"]}, "query"),
])
def test_C01_empty_inputs_are_422_naming_the_field(make_gateway, fake, path, body, field):
    gw = make_gateway()
    r = gw.post(path, json=body, headers=HEADERS)
    assert r.status_code == 422, r.text
    data = r.json()
    if path == "/v1/embeddings":
        assert data["error"]["param"] == field
        assert data["error"]["type"] == "invalid_request_error"
        assert field in data["error"]["message"]
    else:
        assert [e["field"] for e in data["detail"]] == [field]
    assert fake.calls == []  # nothing enqueued, nothing charged


def test_C01_whitespace_inside_lists_and_single_string_alike(make_gateway, fake):
    gw = make_gateway()
    r1 = gw.post("/v1/embeddings", json={"input": " \n"}, headers=HEADERS)
    r2 = gw.post("/v1/embeddings", json={"input": ["ok", "x", "\t"]}, headers=HEADERS)
    r3 = gw.post("/v1/rank", json={"query": "q", "texts": ["a", "  "]}, headers=HEADERS)
    assert (r1.status_code, r2.status_code, r3.status_code) == (422, 422, 422)
    assert r1.json()["error"]["param"] == "input"
    assert r2.json()["error"]["param"] == "input[2]"
    assert r3.json()["detail"][0]["field"] == "texts[1]"
    # invisible format characters (zero-width space, joiner, BOM) leave nothing to embed either
    r4 = gw.post("/v1/embed", json={"text": "\u200b\u200d\ufeff "}, headers=HEADERS)
    assert r4.status_code == 422 and r4.json()["detail"][0]["field"] == "text"
    assert gw.post("/v1/embed", json={"text": "a\u200bb"}, headers=HEADERS).status_code == 200
    assert len(fake.calls) == 1


# -- C04 -------------------------------------------------------------------------------------------
def test_C04_20MB_body_is_413_json(make_gateway, fake):
    gw = make_gateway()
    body = json.dumps({"input": ["x" * 1000] * 20_000}).encode()
    assert len(body) > 20_000_000
    r = gw.post("/v1/embeddings", content=body, headers={**HEADERS, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert "too large" in r.json()["detail"]
    assert fake.calls == []


def test_C04_streamed_body_is_cut_at_the_limit_without_reading_it_all(make_gateway):
    gw = make_gateway()
    app = gw.app
    chunk = b"x" * 65536
    total_chunks = 320  # 20 MiB, sent chunked (no Content-Length)
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/embeddings", "raw_path": b"/v1/embeddings", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"application/json"), (b"x-api-key", API_KEY.encode()),
                                          (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {}}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body)["error"]["code"] == "request_too_large"  # OpenAI shape on this route
    assert "too large" in json.loads(body)["error"]["message"]
    assert pulled <= 1_048_576 // 65536 + 2  # stopped right after the 1 MiB limit


def test_C04_too_many_embedding_inputs_states_the_max(make_gateway, fake):
    gw = make_gateway()
    r = gw.post("/v1/embeddings", json={"model": MODEL, "input": ["x"] * 10_000}, headers=HEADERS)
    assert r.status_code in (413, 422)
    assert "256" in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == "input"
    assert fake.calls == []


def test_C04_too_many_rank_texts_states_the_max(make_gateway, fake):
    gw = make_gateway()
    r = gw.post("/v1/rank", json={"query": "q", "texts": ["t"] * 5000}, headers=HEADERS)
    assert r.status_code == 422
    assert "32" in r.json()["detail"][0]["msg"]
    assert fake.calls == []


def test_C04_character_cap_is_documented_and_named(make_gateway, fake):
    gw = make_gateway()
    r = gw.post("/v1/embed", json={"text": "a" * 100_000}, headers=HEADERS)
    assert r.status_code == 422
    assert "20000" in r.json()["detail"][0]["msg"]
    limits = gw.get("/v1/limits").json()
    assert limits["max_text_chars"] == 20_000
    assert limits["max_body_bytes"] == 1_048_576
    assert limits["max_embedding_inputs"] == 256
    assert limits["max_rank_texts"] == 32
    # at the cap itself it is accepted
    assert gw.post("/v1/embed", json={"text": "a" * 20_000}, headers=HEADERS).status_code == 200


def test_C04_rank_text_char_cap(make_gateway, fake):
    gw = make_gateway()
    r = gw.post("/v1/rank", json={"query": "q", "texts": ["ok", "b" * 10_001]}, headers=HEADERS)
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "texts[1]"
    assert "10000" in r.json()["detail"][0]["msg"]


# -- C05 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("inp", [[100, 201, 301], [[20, 344, 1243], [321, 111, 233]], 5])
def test_C05_token_id_input_is_refused_openai_style(make_gateway, fake, inp):
    gw = make_gateway()
    r = gw.post("/v1/embeddings", json={"model": MODEL, "input": inp}, headers=HEADERS)
    assert r.status_code in (400, 422)
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == "input"
    if isinstance(inp, list):
        assert r.status_code == 400
        assert "token-id input is not supported" in err["message"]
    assert fake.calls == []


# -- C06 -------------------------------------------------------------------------------------------
def test_C06_float_and_base64_agree(make_gateway, fake):
    gw = make_gateway()
    rf = gw.post("/v1/embeddings", json={"model": MODEL, "input": "hello", "encoding_format": "float"},
                 headers=HEADERS)
    rb = gw.post("/v1/embeddings", json={"model": MODEL, "input": "hello", "encoding_format": "base64"},
                 headers=HEADERS)
    assert rf.status_code == rb.status_code == 200
    floats = rf.json()["data"][0]["embedding"]
    assert floats == fake_vector(1)  # the fake answers job 1, then job 2
    raw = base64.b64decode(rb.json()["data"][0]["embedding"])
    assert len(raw) == 1536
    assert list(struct.unpack("<384f", raw)) == fake_vector(2)
    body = rf.json()
    assert body["object"] == "list" and body["model"] == MODEL
    assert body["data"][0]["object"] == "embedding" and body["data"][0]["index"] == 0
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 3


@pytest.mark.parametrize(("extra", "status", "param"), [
    ({"encoding_format": "int8"}, 400, "encoding_format"),
    ({"dimensions": 384}, 200, None),
    ({"dimensions": 128}, 400, "dimensions"),
    ({"model": "text-embedding-3-small"}, 404, "model"),
    ({"model": "sentence-transformers/all-MiniLM-L6-v2"}, 200, None),
])
def test_C06_format_dimensions_model(make_gateway, fake, extra, status, param):
    gw = make_gateway()
    r = gw.post("/v1/embeddings", json={"model": MODEL, "input": "hello", **extra}, headers=HEADERS)
    assert r.status_code == status, r.text
    if status == 200:
        assert len(r.json()["data"][0]["embedding"]) == 384
    else:
        assert r.json()["error"]["param"] == param
    if param == "dimensions":
        assert "384" in r.json()["error"]["message"]
    if param == "model":
        assert r.json()["error"]["code"] == "model_not_found"


def test_C06_list_input_uses_the_batch_call_in_order(make_gateway, fake):
    gw = make_gateway()
    r = gw.post("/v1/embeddings", json={"model": MODEL, "input": ["one", "two words", "three"]},
                headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200, r.text
    assert [d["index"] for d in r.json()["data"]] == [0, 1, 2]
    assert [d["embedding"] for d in r.json()["data"]] == [fake_vector(1), fake_vector(2), fake_vector(3)]
    assert r.json()["usage"]["prompt_tokens"] == 3 + 4 + 3
    (call,) = fake.calls
    assert call["path"] == "/internal/jobs/batch"
    assert call["body"]["payloads"] == [{"text": "one"}, {"text": "two words"}, {"text": "three"}]
    assert call["body"]["api_key"] == API_KEY and call["body"]["job_type"] == "embed"


def test_C06_real_openai_sdk(make_gateway, fake):
    openai = pytest.importorskip("openai", reason="the openai SDK (dev extra) is not installed")
    gw = make_gateway()

    async def run():
        transport = httpx.ASGITransport(app=gw.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            client = openai.AsyncOpenAI(base_url="http://gateway/v1", api_key=API_KEY, http_client=http,
                                        max_retries=0)
            single = await client.embeddings.create(model=MODEL, input="hello")  # default: base64
            many = await client.embeddings.create(model=MODEL, input=["a", "b"])
            as_float = await client.embeddings.create(model=MODEL, input="c", encoding_format="float")
            try:
                await client.embeddings.create(model=MODEL, input=[[1, 2, 3]])
            except openai.BadRequestError as exc:
                refused = exc
            else:
                refused = None
            return single, many, as_float, refused

    single, many, as_float, refused = asyncio.run(run())
    assert [float(x) for x in single.data[0].embedding] == fake_vector(1)
    assert [[float(x) for x in d.embedding] for d in many.data] == [fake_vector(2), fake_vector(3)]
    assert [float(x) for x in as_float.data[0].embedding] == fake_vector(4)
    assert single.usage.prompt_tokens == 3
    assert refused is not None and refused.status_code == 400
    assert fake.calls[0]["body"]["payload"] == {"text": "hello"}


# -- C07 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "status"), [
    (b'{"text":"\\udcaa"}', 422),
    (b'{"text":"a\\u0000b"}', 422),
    (b'{"text":"\\ud83d\\ude00"}', 200),
    ('{"text":"hello [SEP] [MASK] <|endoftext|> world"}'.encode(), 200),
    (b'{"text":"\xff\xfe"}', 400),
    (b'\xff\xfe', 400),
])
def test_C07_surrogates_nul_special_tokens_invalid_utf8(make_gateway, fake, raw, status):
    gw = make_gateway()
    r = gw.post("/v1/embed", content=raw, headers={**HEADERS, "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    if status == 200:
        assert len(r.json()["output"]["embedding"]) == 384
        assert fake.calls[0]["body"]["payload"]["text"] == json.loads(raw)["text"]  # unchanged
    else:
        assert fake.calls == []


def test_C07_on_openai_and_rank_routes(make_gateway, fake):
    gw = make_gateway()
    r = gw.post("/v1/embeddings", content=b'{"input":["ok","\\udcaa"]}',
                headers={**HEADERS, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "input[1]"
    r = gw.post("/v1/embeddings", content=b'{"input":"\xff"}', headers={**HEADERS, "Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    r = gw.post("/v1/rank", json={"query": "q", "texts": ["a", "b\x00"]}, headers=HEADERS)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "texts[1]"
    assert fake.calls == []


def test_native_routes_forbid_unknown_fields(make_gateway, fake):
    gw = make_gateway()
    r = gw.post("/v1/embed", json={"text": "a", "txt": "b"}, headers=HEADERS)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "txt"
    # OpenAI / Cohere routes ignore SDK extras such as `user`
    assert gw.post("/v1/embeddings", json={"input": "a", "user": "u1"}, headers=HEADERS).status_code == 200
