"""Drain and resume: by the operator for any worker, by an owner for their own."""

from __future__ import annotations

from tests.factories import admin_login, make_user, make_worker


def test_admin_drains_and_resumes_a_worker(coordinator, settings):
    admin = admin_login(coordinator, settings)
    owner = make_user(coordinator, "worker_owner")
    w = make_worker(coordinator, owner)
    r = coordinator.post(f"/admin/workers/{w.id}/drain", json={"reason": "maintenance"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "draining"
    r = coordinator.post(f"/admin/workers/{w.id}/resume", json={"reason": "done"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "offline"  # online again at its next heartbeat
    r = coordinator.post(f"/admin/workers/{w.id}/resume", json={"reason": "again"}, headers=admin.headers)
    assert r.status_code == 409 and "not draining" in r.json()["detail"]
    beat = coordinator.post("/workers/heartbeat", json={"worker_id": w.id}, headers=owner.headers)
    assert beat.status_code == 200 and beat.json()["status"] == "online"
    assert coordinator.post(f"/admin/workers/{w.id}/resume", json={}, headers=owner.headers).status_code == 403
    assert coordinator.post("/admin/workers/999999/resume", json={}, headers=admin.headers).status_code == 404


def test_owner_resumes_only_their_own_worker(coordinator):
    owner, other = make_user(coordinator, "worker_owner"), make_user(coordinator, "worker_owner")
    w = make_worker(coordinator, owner)
    assert coordinator.post(f"/workers/{w.id}/drain", headers=owner.headers).json()["status"] == "draining"
    assert coordinator.post(f"/workers/{w.id}/resume", headers=other.headers).status_code == 404
    r = coordinator.post(f"/workers/{w.id}/resume", headers=owner.headers)
    assert r.status_code == 200 and r.json()["status"] == "offline"


def test_a_banned_workers_pending_result_neither_decides_nor_earns(coordinator, settings):
    from tests.backend.coordinator.jobhelpers import BackgroundRequest, submit, wait_for_assignment
    from tests.backend.coordinator.test_jobs_flow import setup_pool

    admin, _, key, (cheat, w2, w3) = setup_pool(coordinator, settings, n_workers=3)
    req = BackgroundRequest(coordinator, "/internal/jobs",
                            {"api_key": key, "job_type": "embed", "payload": {"text": "ban me"}, "wait_seconds": 20})
    req.start()
    first = wait_for_assignment(coordinator, cheat)
    assert submit(coordinator, cheat, first).json()["job_status"] == "queued"  # waiting for its peer
    r = coordinator.post(f"/admin/workers/{cheat.id}/ban", json={"reason": "caught elsewhere"}, headers=admin.headers)
    assert r.status_code == 200
    for w in (w2, w3):  # the job is now decided by two workers in good standing
        submit(coordinator, w, wait_for_assignment(coordinator, w))
    res = req.result()
    assert res.status_code == 200, res.text
    receipt = res.json()["verification"]
    assert {x["worker_id"] for x in receipt["workers"]} == {w2.id, w3.id}
    earned = coordinator.get("/me/earnings", headers=cheat.owner.headers).json()
    assert earned["total"] == "0"


def test_a_declared_reputation_cannot_raise_the_start(coordinator, settings):
    owner = make_user(coordinator, "worker_owner")
    high = make_worker(coordinator, owner, specs={"reputation": 0.99})
    low = make_worker(coordinator, owner, specs={"reputation": 0.2})
    admin = admin_login(coordinator, settings)
    reps = {w["id"]: w["reputation"] for w in coordinator.get("/admin/workers", headers=admin.headers).json()["workers"]}
    assert reps[high.id] == settings.initial_reputation and reps[low.id] == 0.2
