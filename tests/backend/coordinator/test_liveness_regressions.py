"""Regressions found by the end-to-end and red-team runs (tests/integration/)."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlmodel import Session

from backend.coordinator.jobs import notify, sweep
from backend.core.config import get_settings
from backend.core.db import get_engine
from tests.backend.coordinator.jobhelpers import BackgroundRequest, submit, wait_for_assignment
from tests.backend.coordinator.test_jobs_flow import setup_pool


def test_wake_up_waits_for_the_outer_commit_not_a_savepoint(monkeypatch):
    # The ledger posts inside SAVEPOINTs; a wake-up sent when one is released reached the gateway's
    # waiter before the verified job was committed, so every answer waited for the 5 s re-check.
    published: list[tuple[str, ...]] = []
    monkeypatch.setattr(notify, "publish", lambda *topics, payloads=None: published.append(topics))
    with Session(get_engine()) as s:
        s.execute(text("SELECT 1"))
        notify.defer(s, "job:1")
        with s.begin_nested():
            s.execute(text("SELECT 1"))
        assert published == []
        s.commit()
    assert published == [("job:1",)]


def _embed(coordinator, key, text_, wait=20):
    req = BackgroundRequest(coordinator, "/internal/jobs", {"api_key": key, "job_type": "embed",
                                                            "payload": {"text": text_}, "wait_seconds": wait})
    req.start()
    return req


def test_a_signed_zero_vector_is_a_422_and_a_strike_not_a_vote(coordinator, settings):
    admin, _, key, (w1, w2) = setup_pool(coordinator, settings)
    req = _embed(coordinator, key, "zeros")
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    unsigned = {"worker_id": w1.id, "assignment_id": a1["assignment_id"], "nonce": a1["nonce"],
                "signature": "AA", "output": {"embedding": [0.0] * 384}, "output_hash": "0" * 64}
    assert coordinator.post("/jobs/submit", json=unsigned, headers=w1.owner.headers).status_code == 422
    workers = {w["id"]: w for w in coordinator.get("/admin/workers", headers=admin.headers).json()["workers"]}
    assert workers[w1.id]["rejected_count"] == 0  # an unsigned (transport/client) bug costs nothing
    r = submit(coordinator, w1, a1, {"embedding": [0.0] * 384})
    assert r.status_code == 422 and "zero" in r.json()["detail"]
    workers = {w["id"]: w for w in coordinator.get("/admin/workers", headers=admin.headers).json()["workers"]}
    assert workers[w1.id]["rejected_count"] == 1 and workers[w1.id]["status"] == "online"
    # not a vote: the assignment is still usable, and an honest answer verifies the job
    assert submit(coordinator, w1, a1).status_code == 200
    assert submit(coordinator, w2, a2).status_code == 200
    assert req.result().status_code == 200
    req = _embed(coordinator, key, "zeros again")
    b1, b2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    assert submit(coordinator, w1, b1, {"embedding": [0.0] * 384}).status_code == 422
    workers = {w["id"]: w for w in coordinator.get("/admin/workers", headers=admin.headers).json()["workers"]}
    assert workers[w1.id]["status"] == "banned"
    assert "signed an invalid output" in workers[w1.id]["banned_reason"]
    assert submit(coordinator, w2, b2).status_code == 200
    req.result()


def test_a_lapsed_lease_goes_back_to_the_same_worker_when_nobody_else_is_free(coordinator, settings,
                                                                               monkeypatch):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    monkeypatch.setenv("ASSIGNMENT_LEASE_SECONDS", "0.5")
    get_settings.cache_clear()
    req = _embed(coordinator, key, "lost poll response")
    a1, a2 = wait_for_assignment(coordinator, w1), wait_for_assignment(coordinator, w2)
    assert submit(coordinator, w2, a2).status_code == 200
    time.sleep(0.6)  # w1's poll answer was "lost": its lease runs out
    assert sweep.run_once()["leases"] == 1
    monkeypatch.setenv("ASSIGNMENT_LEASE_SECONDS", "30")
    get_settings.cache_clear()
    again = wait_for_assignment(coordinator, w1)
    assert again["assignment_id"] == a1["assignment_id"] and again["nonce"] != a1["nonce"]
    assert submit(coordinator, w1, a1).status_code == 400  # the old nonce is spent
    assert submit(coordinator, w1, again).status_code == 200
    r = req.result()
    assert r.status_code == 200, r.text
