"""Disputes, audits, reputation, bans and liveness: no lie reaches a client, honest noise passes."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlmodel import select

from backend.coordinator.jobs import sweep
from backend.core.canonical import b64url_encode
from backend.core.config import get_settings
from backend.models import EntryKind, LedgerEntry
from tests.backend.coordinator.jobhelpers import (
    INTERNAL,
    embed_request,
    fake_embedding,
    poll,
    submit,
    wait_for_assignment,
)
from tests.backend.coordinator.test_jobs_flow import setup_pool
from tests.factories import make_user, make_worker


def test_C09_honest_float_noise_is_verified_and_both_paid(coordinator, settings, session):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = embed_request(coordinator, key, "test test")
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    exact = fake_embedding("test test")
    noisy = [x + (1e-6 if i % 2 else -1e-6) for i, x in enumerate(exact)]
    submit(coordinator, w1, a1)
    submit(coordinator, w2, a2, {"embedding": noisy})
    r = req.result()
    assert r.status_code == 200
    emb = r.json()["output"]["embedding"]
    assert len(emb) == 384 and abs(sum(x * x for x in emb) ** 0.5 - 1) < 1e-3
    rewards = session.exec(select(LedgerEntry).where(LedgerEntry.kind == EntryKind.worker_reward,
                                                     LedgerEntry.amount > 0)).all()
    assert len(rewards) == 2


def test_dispute_is_settled_by_a_third_worker_and_the_liar_rejected(coordinator, settings):
    _, client_user, key, (w1, w2, w3) = setup_pool(coordinator, settings, n_workers=3)
    req = embed_request(coordinator, key, "the cat sat")
    # Which two workers get the job depends on ranking; find them.
    first = {w.id: poll(coordinator, w, wait=0.5) for w in (w1, w2, w3)}
    holders = [w for w in (w1, w2, w3) if first[w.id]]
    spare = next(w for w in (w1, w2, w3) if not first[w.id])
    honest, liar = holders
    submit(coordinator, honest, first[honest.id])
    # A near-copy: the embedding of a slightly different text (what a lazy cheater returns).
    submit(coordinator, liar, first[liar.id], {"embedding": fake_embedding("the cat sat.")})
    third = wait_for_assignment(coordinator, spare)
    assert third["job"]["payload"] == {"text": "the cat sat"}
    assert submit(coordinator, spare, third).json()["job_status"] == "verified"
    r = req.result()
    assert r.status_code == 200
    body = r.json()
    assert body["output"]["embedding"] == fake_embedding("the cat sat")
    assert body["verification"]["method"] == "dispute"
    assert body["verification"]["rejected_workers"] == [liar.id]
    rej = coordinator.get(f"/workers/{liar.id}/rejections", headers=liar.owner.headers).json()
    assert len(rej["items"]) == 1 and "disagrees" in rej["items"][0]["reason"]


def test_two_rejections_ban_the_worker_and_admin_can_unban(coordinator, settings):
    admin, _, key, _ = setup_pool(coordinator, settings, n_workers=0)
    spec = {"estimated_latency_ms": 100, "max_concurrency": 4}
    # The honest workers declare a modest start, so the scheduler keeps choosing the liar until it is caught.
    liar = make_worker(coordinator, make_user(coordinator, "worker_owner"), specs={**spec, "reputation": 0.9})
    honest = [make_worker(coordinator, make_user(coordinator, "worker_owner"), specs={**spec, "reputation": 0.3})
              for _ in range(2)]
    everyone = [liar, *honest]
    for text in ("one", "two"):
        req = embed_request(coordinator, key, text)
        items = {w.id: poll(coordinator, w, wait=0.5) for w in everyone}
        assert items[liar.id] is not None
        for w in everyone:
            if items[w.id]:
                submit(coordinator, w, items[w.id], {"embedding": [1.0] + [0.0] * 383} if w is liar else None)
        spare = next(w for w in everyone if not items[w.id])
        submit(coordinator, spare, wait_for_assignment(coordinator, spare))
        assert req.result().status_code == 200
    liar_id = liar.id
    workers = {w["id"]: w for w in coordinator.get("/admin/workers", headers=admin.headers).json()["workers"]}
    assert workers[liar_id]["status"] == "banned"
    assert workers[liar_id]["rejected_count"] == 2
    assert workers[liar_id]["reputation"] < 0.5
    r = coordinator.post("/jobs/poll", json={"worker_id": liar_id}, headers=liar.owner.headers)
    assert r.status_code == 403
    r = coordinator.post(f"/admin/workers/{liar_id}/unban", json={"reason": "appeal accepted"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "offline"


def test_no_agreement_fails_the_job_and_charges_nothing(coordinator, settings, monkeypatch):
    monkeypatch.setenv("MAX_EXTRA_REPLICAS", "1")
    get_settings.cache_clear()
    _, client_user, key, workers = setup_pool(coordinator, settings, n_workers=3)
    req = embed_request(coordinator, key, "x")
    for i, w in enumerate(workers):
        item = wait_for_assignment(coordinator, w)
        submit(coordinator, w, item, {"embedding": fake_embedding(f"lie {i}")})
    r = req.result()
    assert r.status_code == 502 and r.json()["detail"].startswith("Job failed")
    bal = coordinator.get("/me/balance", headers=client_user.headers).json()
    assert Decimal(bal["balance"]) == 10 and Decimal(bal["reserved"]) == 0


def test_C10_malformed_outputs_are_422_and_do_not_use_up_the_assignment(coordinator, settings):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = embed_request(coordinator, key, "hello")
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    good = fake_embedding("hello")
    bad_outputs = [good[:383], good + [0.1], [0.0] * 384, ["x"] * 384, [True] * 384, "nope", None]
    for emb in bad_outputs:
        body = {"worker_id": w1.id, "assignment_id": a1["assignment_id"], "nonce": a1["nonce"],
                "signature": "AA", "output": {"embedding": emb}, "output_hash": "0" * 64}
        r = coordinator.post("/jobs/submit", json=body, headers=w1.owner.headers)
        assert r.status_code == 422, (emb if not isinstance(emb, list) else len(emb), r.text)
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = json.dumps({"worker_id": w1.id, "assignment_id": a1["assignment_id"], "nonce": a1["nonce"],
                          "signature": "AA", "output_hash": "0" * 64, "output": {"embedding": [0.5] * 383}})
        raw = raw.replace('"output": {"embedding": [', f'"output": {{"embedding": [{literal}, ')
        r = coordinator.post("/jobs/submit", content=raw, headers={**w1.owner.headers,
                                                                   "Content-Type": "application/json"})
        assert r.status_code in (400, 422), r.text
    assert submit(coordinator, w1, a1).status_code == 200
    assert submit(coordinator, w2, a2).status_code == 200
    assert req.result().json()["output"]["embedding"] == good


def test_C11_malformed_signatures_and_keys(coordinator, settings):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    embed_request(coordinator, key, "sig", wait=1)
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    out = {"embedding": fake_embedding("sig")}
    good = w1.sign(a1["assignment_id"], a1["nonce"], out)
    h = w1.owner.headers
    for sig in (b64url_encode(b"\x01" * 63), b64url_encode(b"\x01" * 65), "", "not base64!"):
        r = coordinator.post("/jobs/submit", json={**good, "signature": sig}, headers=h)
        assert r.status_code == 400, r.text
    # a valid signature over another assignment never verifies for this one
    other = w1.sign(a2["assignment_id"], a2["nonce"], out)
    r = coordinator.post("/jobs/submit", json={**good, "signature": other["signature"]}, headers=h)
    assert r.status_code == 400 and r.json()["detail"] == "Signature verification failed"
    # signed with another worker's key
    r = coordinator.post("/jobs/submit", json={**good, "signature": w2.sign(a1["assignment_id"], a1["nonce"], out)["signature"]}, headers=h)
    assert r.status_code == 400 and r.json()["detail"] == "Signature verification failed"
    r = coordinator.post("/jobs/submit", json={**good, "nonce": "wrong"}, headers=h)
    assert r.status_code == 400 and r.json()["detail"] == "Invalid nonce"
    # another worker's assignment, and another owner's worker
    r = coordinator.post("/jobs/submit", json={**good, "assignment_id": a2["assignment_id"]}, headers=h)
    assert r.status_code == 404
    r = coordinator.post("/jobs/submit", json=good, headers=w2.owner.headers)
    assert r.status_code == 404 and r.json()["detail"] == "Worker not found"
    # the assignment is still usable after all those refusals
    assert coordinator.post("/jobs/submit", json=good, headers=h).status_code == 200
    assert coordinator.post("/jobs/submit", json=good, headers=h).json()["detail"] == "Assignment already submitted"
    owner = make_user(coordinator, "worker_owner")
    for pk in (b64url_encode(b"\x02" * 31), b64url_encode(b"\x02" * 33), "+/+/" * 11, ""):
        r = coordinator.post("/workers/register", headers=owner.headers,
                             json={"name": "bad-key", "region": "x", "public_key": pk, "specs_json": {}})
        assert r.status_code == 422, r.text


def test_expired_lease_goes_to_another_worker(coordinator, settings, monkeypatch):
    _, _, key, (w1, w2, w3) = setup_pool(coordinator, settings, n_workers=3)
    monkeypatch.setenv("ASSIGNMENT_LEASE_SECONDS", "1.0")
    get_settings.cache_clear()
    req = embed_request(coordinator, key, "lease")
    import time

    items: dict = {}
    for _ in range(100):  # the job is created by the background request: wait for its two leases
        for w in (w1, w2, w3):
            items[w.id] = items.get(w.id) or poll(coordinator, w)
        if sum(1 for v in items.values() if v) == 2:
            break
        time.sleep(0.05)
    dead, alive = [w for w in (w1, w2, w3) if items[w.id]]
    spare = next(w for w in (w1, w2, w3) if not items[w.id])
    assert submit(coordinator, alive, items[alive.id]).status_code == 200
    time.sleep(1.1)
    assert sweep.run_once()["leases"] == 1
    late = submit(coordinator, dead, items[dead.id])
    assert late.status_code == 409
    monkeypatch.setenv("ASSIGNMENT_LEASE_SECONDS", "30")
    get_settings.cache_clear()
    assert submit(coordinator, spare, wait_for_assignment(coordinator, spare)).status_code == 200
    res = req.result()
    assert res.status_code == 200, res.text


def test_silent_worker_goes_offline_and_gets_no_work(coordinator, settings, monkeypatch):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    # 1 s, not less: w2's heartbeat below must still be fresh when the job is admitted, on a busy machine too.
    monkeypatch.setenv("HEARTBEAT_TIMEOUT_SECONDS", "1.0")
    get_settings.cache_clear()
    import time

    time.sleep(1.1)
    coordinator.post("/workers/heartbeat", json={"worker_id": w2.id}, headers=w2.owner.headers)
    assert sweep.run_once()["offline"] == 1
    mine = coordinator.get("/workers", headers=w1.owner.headers).json()["workers"]
    assert mine[0]["status"] == "offline"
    r = coordinator.post("/internal/jobs", headers=INTERNAL,
                         json={"api_key": key, "job_type": "embed", "payload": {"text": "x"}, "wait_seconds": 0.3})
    assert r.status_code == 503
    job = coordinator.get("/admin/jobs", headers=setup_admin_headers(coordinator, settings)).json()["items"][0]
    detail = coordinator.get(f"/admin/jobs/{job['id']}", headers=setup_admin_headers(coordinator, settings)).json()
    assert {a["worker_id"] for a in detail["assignments"]} == {w2.id}


def setup_admin_headers(coordinator, settings):
    from tests.factories import admin_login

    return admin_login(coordinator, settings).headers


def test_audit_jobs_catch_a_liar_that_cannot_tell_them_apart(coordinator, settings, monkeypatch):
    admin, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = embed_request(coordinator, key, "known answer")
    submit(coordinator, w1, wait_for_assignment(coordinator, w1))
    submit(coordinator, w2, wait_for_assignment(coordinator, w2))
    assert req.result().status_code == 200
    monkeypatch.setenv("AUDIT_RATE", "1")
    get_settings.cache_clear()
    req = embed_request(coordinator, key, "fresh text", wait=3)
    seen = []
    for w in (w1, w2):
        while (item := poll(coordinator, w, wait=0.3)) is not None:
            seen.append((w, item))
    audits = [(w, i) for w, i in seen if i["job"]["payload"] == {"text": "known answer"}]
    assert len(audits) == 1
    w, item = audits[0]
    assert set(item) == {"assignment_id", "nonce", "job"} and set(item["job"]) == {"job_id", "job_type",
                                                                                   "payload", "request_id"}
    assert submit(coordinator, w, item, {"embedding": fake_embedding("known answer!")}).json()["status"] == "rejected"
    audit_jobs = coordinator.get("/admin/jobs?is_audit=true", headers=admin.headers).json()["items"]
    assert audit_jobs[0]["status"] == "failed"
    for other, it in seen:
        if it is not item:
            submit(coordinator, other, it)
    assert req.result().status_code == 200


def test_a_missing_replica_is_not_a_dispute(coordinator, settings, monkeypatch):
    """One worker online at creation: its lone result waits for the second replica, no dispute."""
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    monkeypatch.setenv("HEARTBEAT_TIMEOUT_SECONDS", "1.0")  # w1's heartbeat must outlive a slow sweep
    get_settings.cache_clear()
    import time

    time.sleep(1.1)
    coordinator.post("/workers/heartbeat", json={"worker_id": w1.id}, headers=w1.owner.headers)
    sweep.run_once()  # w2 goes offline
    monkeypatch.setenv("HEARTBEAT_TIMEOUT_SECONDS", "30")
    get_settings.cache_clear()
    from backend.core.metrics import VERIFICATIONS

    disputes_before = VERIFICATIONS.labels("disputed")._value.get()
    req = embed_request(coordinator, key, "alone for now")
    first = wait_for_assignment(coordinator, w1)
    assert submit(coordinator, w1, first).json()["job_status"] == "queued"
    coordinator.post("/workers/heartbeat", json={"worker_id": w2.id}, headers=w2.owner.headers)
    sweep.run_once()  # the backlog step places the missing replica on the worker that came back
    assert submit(coordinator, w2, wait_for_assignment(coordinator, w2)).json()["job_status"] == "verified"
    res = req.result()
    assert res.status_code == 200, res.text
    assert res.json()["verification"]["method"] == "pair"
    assert VERIFICATIONS.labels("disputed")._value.get() == disputes_before
