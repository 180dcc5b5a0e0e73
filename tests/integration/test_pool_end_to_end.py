"""The whole pool in real processes: gateway → coordinator → two workers running the real model.

Order matters (one pool per session): the plain checks first, then a worker is killed mid-job,
then the coordinator is killed with jobs queued and restarted on the same database.
"""

from __future__ import annotations

import signal
import threading
import time
from decimal import Decimal

import httpx
import numpy as np
import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from backend.core.canonical import b64url_decode, output_hash, signing_payload
from tests.integration.conftest import LEASE_SECONDS, SWEEP_SECONDS, wait_until

pytestmark = pytest.mark.e2e


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def model_vec(encoder, text: str) -> np.ndarray:
    return encoder.encode([text])[0][0]


def test_embed_returns_the_models_embedding(live_pool, encoder):
    text = "OpenMesh is a verified compute pool for text embeddings."
    r = live_pool.gateway("POST", "/v1/embed", json={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    emb = body["output"]["embedding"]
    assert len(emb) == 384
    assert cosine(emb, model_vec(encoder, text)) >= 0.99
    assert body["verification"]["method"] == "pair"
    assert len(body["verification"]["workers"]) == 2


def test_rank_puts_the_obvious_match_first(live_pool):
    texts = ["a recipe for chocolate cake", "the stock market fell today",
             "how to bake a sponge cake at home"]
    r = live_pool.gateway("POST", "/v1/rank", json={"query": "baking a cake", "texts": texts})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["indices"][-1] == 1  # finance is least relevant to baking
    assert set(out["indices"][:2]) == {0, 2}
    assert out["scores"] == sorted(out["scores"], reverse=True)


def test_C02_text_longer_than_the_window_is_truncated_at_256_word_pieces(live_pool, encoder):
    for text in ("word " * 2000, " ".join(f"token{i}" for i in range(150))):  # ~2,000 and ~300+ pieces
        r = live_pool.gateway("POST", "/v1/embed", json={"text": text})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["usage"]["truncated"] is True and body["usage"]["tokens"] == 256
        assert body["verification"]["method"] == "pair"  # both honest workers truncated identically
        assert cosine(body["output"]["embedding"], model_vec(encoder, text)) >= 0.9999
    r = live_pool.gateway("POST", "/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "word " * 2000})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == 256


def test_receipt_signatures_verify_against_the_workers_public_keys(live_pool):
    text = "receipts can be checked by the client"
    answer = live_pool.gateway("POST", "/v1/embed", json={"text": text}).json()
    r = live_pool.gateway("GET", f"/v1/jobs/{answer['job_id']}")
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["status"] == "verified" and receipt["output"] == answer["output"]
    registered = {w["id"]: w["public_key"]
                  for w in live_pool.coordinator("GET", "/admin/workers").json()["workers"]}
    entries = receipt["verification"]["workers"]
    assert len({e["worker_id"] for e in entries}) == 2
    for e in entries:
        assert e["public_key"].rstrip("=") == registered[e["worker_id"]].rstrip("=")
        key = VerifyKey(b64url_decode(registered[e["worker_id"]]))
        signature = b64url_decode(e["signature"])
        key.verify(signing_payload(e["assignment_id"], e["nonce"], e["output_hash"]), signature)
        # ... and a signature over anything else does not verify
        with pytest.raises(BadSignatureError):
            key.verify(signing_payload(e["assignment_id"], e["nonce"], "0" * 64), signature)
    # the delivered vector is exactly what one of the signing workers hashed
    assert output_hash(receipt["output"]) in {e["output_hash"] for e in entries}
    # another client's key (or none) cannot read the receipt
    assert httpx.get(f"{live_pool.gateway_url}/v1/jobs/{answer['job_id']}", timeout=10).status_code == 401


def test_openai_sdk_gets_the_models_vectors(live_pool, encoder):
    openai = pytest.importorskip("openai", reason="the openai SDK (dev extra) is not installed")
    client = openai.OpenAI(base_url=live_pool.gateway_url + "/v1", api_key=live_pool.api_key, max_retries=0)
    one = client.embeddings.create(model="all-MiniLM-L6-v2", input="the quick brown fox")  # base64 by default
    assert len(one.data) == 1 and len(one.data[0].embedding) == 384
    texts = ["first sentence", "a second, different sentence"]
    many = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    assert [d.index for d in many.data] == [0, 1]
    for got, text in [(one.data[0].embedding, "the quick brown fox"),
                      *((d.embedding, t) for d, t in zip(many.data, texts, strict=True)),
                      *((d.embedding, t) for d, t in zip(floats.data, texts, strict=True))]:
        want = model_vec(encoder, text)
        assert np.allclose(np.asarray(got, dtype=np.float32), want, atol=1e-5)
        assert cosine(got, want) >= 0.9999
    assert one.usage.prompt_tokens > 0


def _balance(live_pool, email) -> Decimal:
    return Decimal(live_pool.coordinator("GET", "/me/balance", headers=live_pool.user_headers(email))
                   .json()["balance"])


def _ledger(live_pool, email, kind) -> list[dict]:
    headers = live_pool.user_headers(email)
    items, offset = [], 0
    while True:
        page = live_pool.coordinator("GET", f"/me/ledger?kind={kind}&limit=200&offset={offset}",
                                     headers=headers).json()
        items += page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return items


def _assert_money_adds_up(live_pool) -> dict:
    summary = live_pool.coordinator("GET", "/admin/finance/summary").json()
    assert summary["invariant"]["ok"] is True, summary["invariant"]
    totals = {k: Decimal(v) for k, v in summary["totals_by_kind"].items()}
    assert totals["job_charge"] > 0
    assert totals["pool_fee"] + totals["worker_reward"] == totals["job_charge"]
    assert Decimal(summary["clearing_balance_tokens"]) == 0
    assert Decimal(summary["outstanding_reservations"]) == 0
    # the client paid exactly the charges; the (only) worker owner got exactly the rewards
    charged = -sum(Decimal(e["amount"]) for e in _ledger(live_pool, live_pool.client_email, "job_charge"))
    assert charged == totals["job_charge"]
    rewards = sum(Decimal(e["amount"]) for e in _ledger(live_pool, live_pool.owner_email, "worker_reward"))
    assert rewards == totals["worker_reward"]
    assert Decimal(summary["pool_balance_tokens"]) == totals["pool_fee"]
    return summary


def test_client_is_charged_and_fee_plus_rewards_equal_the_charges(live_pool):
    before = _balance(live_pool, live_pool.client_email)
    r = live_pool.gateway("POST", "/v1/embed", json={"text": "pay me once"})
    assert r.status_code == 200
    price = Decimal(r.json()["price"])
    assert price > 0
    assert _balance(live_pool, live_pool.client_email) == before - price
    summary = _assert_money_adds_up(live_pool)
    assert summary["jobs_charged"] >= 5  # every verified client job so far, each once


def _admin_job(live_pool, job_id):
    return live_pool.coordinator("GET", f"/admin/jobs/{job_id}").json()


def _newest_job_id(live_pool, after: int) -> int | None:
    items = live_pool.coordinator("GET", "/admin/jobs?limit=5").json()["items"]
    ids = [j["id"] for j in items if j["id"] > after]
    return max(ids) if ids else None


def _max_job_id(live_pool) -> int:
    items = live_pool.coordinator("GET", "/admin/jobs?limit=1").json()["items"]
    return items[0]["id"] if items else 0


def test_worker_killed_mid_job_costs_at_most_one_lease(live_pool, encoder):
    live_pool.start_worker(2)
    live_pool.wait_online(3)
    mine = {w["id"] for w in live_pool.workers}

    def victim_state(job_id):
        return next((a["status"] for a in _admin_job(live_pool, job_id)["assignments"]
                     if a["worker_id"] == victim["id"]), None)

    for attempt in range(3):
        # The scheduler prefers reputation, then latency, then id: the job goes to the two best workers.
        ranked = sorted((w for w in live_pool.coordinator("GET", "/admin/workers").json()["workers"]
                         if w["id"] in mine and w["status"] == "online"),
                        key=lambda w: (-w["reputation"], w["specs_json"].get("estimated_latency_ms", 0),
                                       w["id"]))
        victim = next(w for w in live_pool.workers if w["id"] == ranked[0]["id"])
        # Freeze it while its long-poll is open: the coordinator leases it the job, the answer never
        # leaves. (Frozen between two polls, it holds nothing: let it finish that job and try again.)
        live_pool.signal(victim["name"], signal.SIGSTOP)
        last = _max_job_id(live_pool)
        text = f"a worker dies while holding this job ({attempt})"
        result: dict = {}
        t = threading.Thread(target=lambda text=text, result=result: result.update(
            r=live_pool.gateway("POST", "/v1/embed", json={"text": text})))
        t.start()
        job_id = wait_until(lambda last=last: _newest_job_id(live_pool, last), 10, what="job created")
        try:
            wait_until(lambda job_id=job_id: victim_state(job_id) == "running", 3,
                       what="the victim leased the job")
            break
        except AssertionError:
            live_pool.signal(victim["name"], signal.SIGCONT)
            t.join(60)
    else:
        pytest.fail("the frozen worker never held a lease")
    live_pool.kill(victim["name"])
    killed_at = time.monotonic()
    t.join(60)
    elapsed = time.monotonic() - killed_at
    r = result["r"]
    assert r.status_code == 200, r.text
    assert cosine(r.json()["output"]["embedding"], model_vec(encoder, text)) >= 0.9999
    assert victim["id"] not in {e["worker_id"] for e in r.json()["verification"]["workers"]}
    assert elapsed <= LEASE_SECONDS + 2 * SWEEP_SECONDS + 3.0, f"answer took {elapsed:.1f} s after the kill"
    statuses = {a["worker_id"]: a["status"] for a in _admin_job(live_pool, job_id)["assignments"]}
    assert statuses[victim["id"]] == "expired"
    _assert_money_adds_up(live_pool)


def test_coordinator_killed_with_jobs_queued_restarts_and_charges_once(live_pool, encoder):
    alive = [w for w in live_pool.workers if w["name"] in live_pool.running]
    assert len(alive) == 2
    before = _balance(live_pool, live_pool.client_email)
    last = _max_job_id(live_pool)
    for w in alive:  # the jobs must stay queued: no worker computes them before the crash
        live_pool.signal(w["name"], signal.SIGSTOP)
    texts = [f"queued before the crash, number {i}" for i in range(3)]
    threads = [threading.Thread(target=_swallow, args=(live_pool, t)) for t in texts]
    for t in threads:
        t.start()

    def all_queued():
        items = live_pool.coordinator("GET", "/admin/jobs?limit=10").json()["items"]
        new = [j for j in items if j["id"] > last]
        return new if len(new) == 3 and all(j["status"] == "queued" for j in new) else None

    jobs = wait_until(all_queued, 15, what="three queued jobs")
    job_ids = sorted(j["id"] for j in jobs)
    live_pool.kill("coordinator")
    for t in threads:
        t.join(30)  # the gateway answers them with an error: the coordinator is gone
    live_pool.start_coordinator()
    for w in alive:
        live_pool.signal(w["name"], signal.SIGCONT)

    def all_verified():
        states = {j: _admin_job(live_pool, j)["status"] for j in job_ids}
        return states if all(s == "verified" for s in states.values()) else None

    wait_until(all_verified, 60, interval=0.5, what="the queued jobs verified after the restart")
    # The client can still fetch each answer by id: the model's embedding of its text.
    prices = Decimal(0)
    for job_id in job_ids:
        receipt = live_pool.gateway("GET", f"/v1/jobs/{job_id}").json()
        assert receipt["status"] == "verified"
        text = receipt_text(live_pool, job_id)
        assert cosine(receipt["output"]["embedding"], model_vec(encoder, text)) >= 0.9999
        prices += Decimal(receipt["price"])
    charges = [e for e in _ledger(live_pool, live_pool.client_email, "job_charge") if e["job_id"] in job_ids]
    assert sorted(e["job_id"] for e in charges) == job_ids  # each exactly once
    assert _balance(live_pool, live_pool.client_email) == before - prices
    _assert_money_adds_up(live_pool)
    # and the restarted pool still serves new requests
    r = live_pool.gateway("POST", "/v1/embed", json={"text": "after the restart"})
    assert r.status_code == 200, r.text


def receipt_text(live_pool, job_id) -> str:
    return _admin_job(live_pool, job_id)["payload"]["text"]


def _swallow(live_pool, text):
    try:
        live_pool.gateway("POST", "/v1/embed", json={"text": text})
    except httpx.HTTPError:
        pass

