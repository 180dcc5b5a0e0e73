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
