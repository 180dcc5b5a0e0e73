"""Adversarial workers, money and auth: lies must never reach a client, nothing may answer 500."""

from __future__ import annotations

import math

import pytest

from tests.backend.coordinator.jobhelpers import (
    BackgroundRequest,
    embed_request,
    fake_embedding,
    honest_output,
    submit,
    wait_for_assignment,
)
from tests.backend.coordinator.test_jobs_flow import setup_pool


def test_unnormalised_huge_embeddings_are_refused_and_never_agree(coordinator, settings):
    """[1e200]*384 and [-1e200]*384 are opposite vectors; their cosine is NaN, which must not pass as 1."""
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = embed_request(coordinator, key, "hello", wait=20)
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    # Signed (one strike each, below the ban threshold) ...
    for w, a, emb in ((w1, a1, [1e200] * 384), (w2, a2, [-1e200] * 384)):
        r = submit(coordinator, w, a, {"embedding": emb})
        assert r.status_code == 422 and "norm" in r.json()["detail"], r.text
    # ... and unsigned (no strike): overflowing products, a plain unnormalised vector.
    for emb in ([1e306] * 384, [1e308] + [0.0] * 383, [2.0] + [0.0] * 383):
        body = {**w1.sign(a1["assignment_id"], a1["nonce"], {"embedding": emb}), "signature": "AA"}
        r = coordinator.post("/jobs/submit", json=body, headers=w1.owner.headers)
        assert r.status_code == 422 and "norm" in r.json()["detail"], r.text
    assert submit(coordinator, w1, a1).status_code == 200
    assert submit(coordinator, w2, a2).status_code == 200
    body = req.result().json()
    emb = body["output"]["embedding"]
    assert abs(math.sqrt(sum(x * x for x in emb)) - 1) < 1e-3


def test_extra_output_fields_never_reach_the_client(coordinator, settings):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = embed_request(coordinator, key, "hello")
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    r = submit(coordinator, w1, a1, {"embedding": fake_embedding("hello"), "note": "visit evil.example"})
    assert r.status_code == 422 and "note" in r.json()["detail"], r.text
    assert submit(coordinator, w1, a1).status_code == 200
    assert submit(coordinator, w2, a2).status_code == 200
    assert set(req.result().json()["output"]) == {"embedding"}


def test_rank_output_with_extra_fields_is_refused(coordinator, settings):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = BackgroundRequest(coordinator, "/internal/jobs", {
        "api_key": key, "job_type": "rank", "payload": {"query": "q", "texts": ["a", "b"]}, "wait_seconds": 20})
    req.start()
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    out = {**honest_output(a1["job"]), "answer": "trust me"}
    assert submit(coordinator, w1, a1, out).status_code == 422
    assert submit(coordinator, w1, a1).status_code == 200
    assert submit(coordinator, w2, a2).status_code == 200
    assert set(req.result().json()["output"]) == {"indices", "scores"}


def test_lying_metrics_are_refused_and_usage_stays_within_the_model_window(coordinator, settings):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = embed_request(coordinator, key, "hello")
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    out = {"embedding": fake_embedding("hello")}
    for metrics in ({"num_tokens": 10**30}, {"num_tokens": -1}, {"num_tokens": 257}, {"num_tokens": "7"},
                    {"truncated": "yes"}, {"junk": "z" * 100_000}):
        body = w1.sign(a1["assignment_id"], a1["nonce"], out)
        body["metrics_json"] = metrics
        r = coordinator.post("/jobs/submit", json=body, headers=w1.owner.headers)
        assert r.status_code == 422, (metrics if len(str(metrics)) < 100 else "junk", r.text)
    assert submit(coordinator, w1, a1).status_code == 200
    assert submit(coordinator, w2, a2).status_code == 200
    usage = req.result().json()["usage"]
    assert usage["tokens"] == 7


# --- money ---------------------------------------------------------------------------------------

def test_credits_cannot_overflow_the_ledger(coordinator, settings):
    """Balances are int64 nano-tokens: past ~9.2e9 tokens SQLite turned sums into floats / 'integer overflow'."""
    from tests.factories import admin_login, make_user

    admin = admin_login(coordinator, settings)
    users = [make_user(coordinator, "client") for _ in range(2)]
    codes = []
    for i in range(10):
        r = coordinator.post(f"/admin/users/{users[i % 2].id}/credit", json={"amount": "1000000000"},
                             headers=admin.headers)
        codes.append(r.status_code)
        assert r.status_code in (201, 422), r.text
    assert 422 in codes and "supply" in r.json()["detail"]
    summary = coordinator.get("/admin/finance/summary", headers=admin.headers)
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["invariant"]["ok"], body["invariant"]
    assert body["supply_minted"] == str(codes.count(201) * 1_000_000_000)


@pytest.mark.parametrize("amount", ["١٢٣", "1_000", "٥", "１０"])
def test_credit_amount_is_a_plain_ascii_decimal(coordinator, settings, amount):
    from tests.factories import admin_login, make_user

    admin = admin_login(coordinator, settings)
    user = make_user(coordinator, "client")
    r = coordinator.post(f"/admin/users/{user.id}/credit", json={"amount": amount}, headers=admin.headers)
    assert r.status_code == 422, r.text


# --- auth ----------------------------------------------------------------------------------------

def test_deeply_nested_login_body_is_400_not_500(coordinator):
    r = coordinator.post("/auth/login", content=b"[" * 100_000 + b"]" * 100_000,
                         headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text


def test_unicode_and_punycode_forms_of_one_address_are_one_account(coordinator):
    from tests.factories import PASSWORD

    r = coordinator.post("/auth/register", json={"email": "Ann@Exämple.com", "password": PASSWORD, "role": "client"})
    assert r.status_code == 201, r.text
    r = coordinator.post("/auth/register", json={"email": "ann@xn--exmple-cua.com", "password": PASSWORD,
                                                  "role": "client"})
    assert r.status_code == 409, r.text
    for email in ("ann@exämple.com", "ANN@XN--EXMPLE-CUA.COM"):
        assert coordinator.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200


# --- held: sybil scheduling, IDOR, roles -----------------------------------------------------------

def test_two_workers_of_one_owner_never_share_a_job_while_another_owner_is_free(coordinator, settings):
    from tests.backend.coordinator.jobhelpers import poll
    from tests.factories import make_user, make_worker

    _, _, key, _ = setup_pool(coordinator, settings, n_workers=0)
    sybil = make_user(coordinator, "worker_owner")
    s1, s2 = (make_worker(coordinator, sybil, specs={"reputation": 0.9, "estimated_latency_ms": 1,
                                                     "max_concurrency": 4}) for _ in range(2))
    honest = make_worker(coordinator, make_user(coordinator, "worker_owner"),
                         specs={"reputation": 0.1, "estimated_latency_ms": 5000, "max_concurrency": 4})
    embed_request(coordinator, key, "sybil", wait=1)
    got = {w.id: poll(coordinator, w, wait=0.5) for w in (s1, s2, honest)}
    assert got[honest.id] is not None
    assert (got[s1.id] is None) != (got[s2.id] is None)


def test_idor_and_role_holes_stay_closed(coordinator, settings):
    from tests.factories import make_api_key, make_user, make_worker

    c = coordinator
    alice, bob = make_user(c, "client"), make_user(c, "client")
    owner, other = make_user(c, "worker_owner"), make_user(c, "worker_owner")
    w = make_worker(c, owner)
    make_api_key(c, alice)
    key_id = c.get("/auth/api-keys", headers=alice.headers).json()["api_keys"][0]["id"]
    assert c.delete(f"/auth/api-keys/{key_id}", headers=bob.headers).status_code == 404
    assert c.get("/auth/api-keys", headers=bob.headers).json()["api_keys"] == []
    for path, body in (("/workers/heartbeat", {"worker_id": w.id}), ("/jobs/poll", {"worker_id": w.id}),
                       (f"/workers/{w.id}/drain", {})):
        r = c.post(path, json=body, headers=other.headers)
        assert r.status_code == 404 and r.json()["detail"] == "Worker not found", (path, r.text)
    assert c.get(f"/workers/{w.id}/rejections", headers=other.headers).status_code == 404
    for path in ("/admin/workers", "/admin/jobs", "/admin/finance/summary", "/admin/leaderboard",
                 "/admin/emission/status", "/admin/users"):
        assert c.get(path, headers=owner.headers).status_code == 403, path
        assert c.get(path, headers=alice.headers).status_code == 403, path
    assert c.post("/admin/emission/run-now", headers=owner.headers).status_code == 403
    assert c.post(f"/admin/users/{owner.id}/credit", json={"amount": "5"}, headers=owner.headers).status_code == 403
    r = c.post("/workers/register", headers=alice.headers, json={"name": "x", "public_key": "A" * 43})
    assert r.status_code == 403
    # path and body ids past int64 are refused cleanly, never a database overflow
    big = 2**70
    assert c.delete(f"/auth/api-keys/{big}", headers=alice.headers).status_code in (404, 422)
    assert c.post("/jobs/poll", json={"worker_id": big}, headers=owner.headers).status_code in (404, 422)
    assert c.get(f"/me/ledger?offset={big}", headers=alice.headers).status_code in (200, 422)


def test_concurrent_refreshes_with_one_token_rotate_it_at_most_once(coordinator):
    import threading

    from tests.factories import make_user

    user = make_user(coordinator, "client")
    results: list = []
    barrier = threading.Barrier(4)

    def go():
        barrier.wait()
        results.append(coordinator.post("/auth/refresh", json={"refresh_token": user.refresh_token}))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) <= 1 and all(c in (200, 401) for c in codes), codes
    assert coordinator.post("/auth/refresh", json={"refresh_token": user.refresh_token}).status_code == 401


def test_concurrent_credits_with_one_idempotency_key_credit_once(coordinator, settings):
    import threading

    from tests.factories import admin_login, make_user

    admin = admin_login(coordinator, settings)
    user = make_user(coordinator, "client")
    results: list = []
    barrier = threading.Barrier(4)

    def go():
        barrier.wait()
        results.append(coordinator.post(f"/admin/users/{user.id}/credit", headers=admin.headers,
                                        json={"amount": "7", "idempotency_key": "same-key"}))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    assert sum(not r.json()["replayed"] for r in results) == 1
    assert coordinator.get("/me/balance", headers=user.headers).json()["balance"] == "7"
