"""GET /me: the caller's own account."""

from __future__ import annotations

import pytest

from tests.factories import make_user


@pytest.mark.parametrize("role", ["client", "worker_owner"])
def test_me(coordinator, role):
    user = make_user(coordinator, role)
    r = coordinator.get("/me", headers=user.headers)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "email", "role", "created_at", "is_active"}
    assert body["id"] == user.id and body["email"] == user.email and body["role"] == role
    assert body["is_active"] is True


def test_me_needs_a_token(coordinator):
    r = coordinator.get("/me")
    assert r.status_code == 401
    assert r.headers.get("www-authenticate") == "Bearer"
    assert coordinator.get("/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert coordinator.get("/me", headers={"Authorization": "Basic abc"}).status_code == 401
