"""A client job goes to two workers, is verified by similarity, answered and charged once."""

from __future__ import annotations

from decimal import Decimal

from tests.backend.coordinator.jobhelpers import (
    INTERNAL,
    BackgroundRequest,
    fake_embedding,
    honest_output,
    submit,
    wait_for_assignment,
)
from tests.factories import admin_login, credit, make_api_key, make_user, make_worker


def setup_pool(coordinator, settings, n_workers: int = 2, balance: str = "10"):
    admin = admin_login(coordinator, settings)
    client_user = make_user(coordinator, "client")
    credit(coordinator, admin, client_user, balance)
    key = make_api_key(coordinator, client_user)
    owners = [make_user(coordinator, "worker_owner") for _ in range(n_workers)]
    workers = [make_worker(coordinator, o) for o in owners]
    return admin, client_user, key, workers


def test_embed_job_is_verified_by_two_workers_and_charged(coordinator, settings):
    admin, client_user, key, (w1, w2) = setup_pool(coordinator, settings)
    req = BackgroundRequest(coordinator, "/internal/jobs",
                            {"api_key": key, "job_type": "embed", "payload": {"text": "hello"}, "wait_seconds": 20})
    req.start()
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    assert a1["job"]["job_id"] == a2["job"]["job_id"] and a1["nonce"] != a2["nonce"]
    assert a1["job"]["payload"] == {"text": "hello"}
    assert submit(coordinator, w1, a1).json()["job_status"] == "queued"
    assert submit(coordinator, w2, a2).json()["job_status"] == "verified"
    r = req.result()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["output"]["embedding"] == fake_embedding("hello")
    assert body["verification"]["method"] == "pair"
    assert {w["worker_id"] for w in body["verification"]["workers"]} == {w1.id, w2.id}
    bal = coordinator.get("/me/balance", headers=client_user.headers).json()
    assert Decimal(bal["balance"]) == Decimal("10") - Decimal(body["price"])
    assert Decimal(bal["reserved"]) == 0
    # a retried identical submission is refused and pays nothing more
    assert submit(coordinator, w1, a1).status_code == 409
    summary = coordinator.get("/admin/finance/summary", headers=admin.headers).json()
    assert summary["invariant"]["ok"], summary["invariant"]


def test_rank_job_verified_with_order_from_scores(coordinator, settings):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    payload = {"query": "q", "texts": ["a", "b", "c"]}
    req = BackgroundRequest(coordinator, "/internal/jobs",
                            {"api_key": key, "job_type": "rank", "payload": payload, "wait_seconds": 20})
    req.start()
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    submit(coordinator, w1, a1)
    submit(coordinator, w2, a2)
    r = req.result()
    assert r.status_code == 200, r.text
    assert r.json()["output"] == honest_output(a1["job"])


def test_timeout_cancels_and_charges_nothing(coordinator, settings):
    _, client_user, key, (w1, _) = setup_pool(coordinator, settings)
    r = coordinator.post("/internal/jobs", headers={"X-Internal-Token": "test-internal-token"},
                         json={"api_key": key, "job_type": "embed", "payload": {"text": "x"}, "wait_seconds": 0.5})
    assert r.status_code == 503 and r.json()["detail"] == "Verification timeout"
    bal = coordinator.get("/me/balance", headers=client_user.headers).json()
    assert Decimal(bal["balance"]) == 10 and Decimal(bal["reserved"]) == 0


def test_unknown_key_and_insufficient_balance(coordinator, settings):
    _, _, key, _ = setup_pool(coordinator, settings, balance="0.0000001")
    h = {"X-Internal-Token": "test-internal-token"}
    r = coordinator.post("/internal/jobs", headers=h, json={"api_key": "om_nope", "job_type": "embed",
                                                            "payload": {"text": "x"}})
    assert r.status_code == 401 and r.json()["detail"] == "Invalid API key"
    r = coordinator.post("/internal/jobs", headers=h, json={"api_key": key, "job_type": "embed",
                                                            "payload": {"text": "x"}})
    assert r.status_code == 402 and r.json()["detail"] == "Insufficient balance"
    r = coordinator.post("/internal/jobs", json={"api_key": key, "job_type": "embed", "payload": {"text": "x"}})
    assert r.status_code == 401


def test_poll_without_work_is_404(coordinator, settings):
    _, _, _, (w1, _) = setup_pool(coordinator, settings)
    r = coordinator.post("/jobs/poll", json={"worker_id": w1.id}, headers=w1.owner.headers)
    assert r.status_code == 404 and r.json()["detail"] == "No assignment available"


def test_admin_job_list_and_detail_name_the_client(coordinator, settings):
    admin, client_user, key, (w1, w2) = setup_pool(coordinator, settings)
    r = coordinator.post("/internal/jobs", headers=INTERNAL,
                         json={"api_key": key, "job_type": "embed", "payload": {"text": "who"}, "wait_seconds": 0})
    job_id = r.json()["job_id"]
    row = coordinator.get("/admin/jobs", headers=admin.headers).json()["items"][0]
    assert row["id"] == job_id and row["client_email"] == client_user.email
    assert coordinator.get(f"/admin/jobs/{job_id}", headers=admin.headers).json()["client_email"] == client_user.email


def test_a_freed_slot_takes_a_waiting_job_without_the_sweep(coordinator, settings):
    """Workers with one slot each: the second job waits, and gets both replicas when the first is submitted."""
    admin, client_user, key, _ = setup_pool(coordinator, settings, n_workers=0)
    from tests.factories import make_user, make_worker

    spec = {"estimated_latency_ms": 10, "max_concurrency": 1}
    w1, w2 = (make_worker(coordinator, make_user(coordinator, "worker_owner"), specs=spec) for _ in range(2))
    first = BackgroundRequest(coordinator, "/internal/jobs",
                              {"api_key": key, "job_type": "embed", "payload": {"text": "one"}, "wait_seconds": 20})
    first.start()
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    second = BackgroundRequest(coordinator, "/internal/jobs",
                               {"api_key": key, "job_type": "embed", "payload": {"text": "two"}, "wait_seconds": 20})
    second.start()
    import time

    time.sleep(0.3)  # the second job is admitted with no free slot (no sweep runs in tests)
    submit(coordinator, w1, a1)
    submit(coordinator, w2, a2)
    assert first.result().status_code == 200
    b1, b2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    assert b1["job"]["payload"] == b2["job"]["payload"] == {"text": "two"}
    submit(coordinator, w1, b1)
    submit(coordinator, w2, b2)
    assert second.result().status_code == 200
