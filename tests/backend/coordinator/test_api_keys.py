"""Client API keys: create (shown once), list (never the secret), revoke, roles, resolve for the gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from backend.coordinator.auth import service
from backend.core.security import hash_token, now_utc
from backend.models import ApiKey, User
from tests.factories import admin_login, make_api_key, make_user


def test_create_list_revoke(coordinator, session):
    client = make_user(coordinator, "client")
    r = coordinator.post("/auth/api-keys", json={"name": "  producao-app-1  "}, headers=client.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == {"id", "name", "prefix", "key", "created_at"}
    assert created["name"] == "producao-app-1"
    assert created["key"].startswith("om_") and created["key"].startswith(created["prefix"])
    assert len(created["key"]) > len(created["prefix"]) + 20

    row = session.get(ApiKey, created["id"])
    assert row.key_hash == hash_token(created["key"]) and created["key"] not in row.key_hash
    key_hash = row.key_hash
    session.rollback()  # end the read: on SQLite every transaction holds the write lock

    listing = coordinator.get("/auth/api-keys", headers=client.headers)
    assert listing.status_code == 200
    keys = listing.json()["api_keys"]
    assert len(keys) == 1
    assert set(keys[0]) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at"}
    assert created["key"] not in listing.text and key_hash not in listing.text
    assert keys[0]["revoked_at"] is None

    assert coordinator.delete(f"/auth/api-keys/{created['id']}", headers=client.headers).status_code == 204
    # Idempotent, and the listing shows when it was revoked.
    assert coordinator.delete(f"/auth/api-keys/{created['id']}", headers=client.headers).status_code == 204
    keys = coordinator.get("/auth/api-keys", headers=client.headers).json()["api_keys"]
    assert keys[0]["revoked_at"] is not None
    session.expire_all()
    assert service.resolve_api_key(session, created["key"]) is None  # the gateway refuses it at once


def test_list_shows_only_own_keys_and_other_users_key_is_404(coordinator):
    alice = make_user(coordinator, "client")
    bob = make_user(coordinator, "client")
    make_api_key(coordinator, alice, "a1")
    make_api_key(coordinator, alice, "a2")
    bob_key_id = coordinator.post("/auth/api-keys", json={"name": "b1"}, headers=bob.headers).json()["id"]

    names = [k["name"] for k in coordinator.get("/auth/api-keys", headers=alice.headers).json()["api_keys"]]
    assert names == ["a1", "a2"]
    assert coordinator.delete(f"/auth/api-keys/{bob_key_id}", headers=alice.headers).status_code == 404
    assert coordinator.delete("/auth/api-keys/999999", headers=alice.headers).status_code == 404
    bob_keys = coordinator.get("/auth/api-keys", headers=bob.headers).json()["api_keys"]
    assert [k["revoked_at"] for k in bob_keys] == [None]


@pytest.mark.parametrize("role", ["worker_owner", "admin"])
def test_non_clients_get_403(coordinator, settings, session, role):
    if role == "admin":
        service.ensure_admin(session, settings)
        session.commit()
        user = admin_login(coordinator, settings)
    else:
        user = make_user(coordinator, role)
    assert coordinator.post("/auth/api-keys", json={"name": "k"}, headers=user.headers).status_code == 403
    assert coordinator.get("/auth/api-keys", headers=user.headers).status_code == 403
    assert coordinator.delete("/auth/api-keys/1", headers=user.headers).status_code == 403


def test_api_keys_need_authentication(coordinator):
    assert coordinator.post("/auth/api-keys", json={"name": "k"}).status_code == 401
    assert coordinator.get("/auth/api-keys").status_code == 401
    assert coordinator.delete("/auth/api-keys/1").status_code == 401


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, None, "a\nb"])
def test_api_key_name_validation(coordinator, name):
    client = make_user(coordinator, "client")
    r = coordinator.post("/auth/api-keys", json={"name": name}, headers=client.headers)
    assert r.status_code == 422


def test_api_key_name_at_the_limit(coordinator):
    client = make_user(coordinator, "client")
    r = coordinator.post("/auth/api-keys", json={"name": "n" * 100}, headers=client.headers)
    assert r.status_code == 201


def test_keys_are_distinct(coordinator):
    client = make_user(coordinator, "client")
    keys = {make_api_key(coordinator, client, f"k{i}") for i in range(5)}
    assert len(keys) == 5


def test_active_key_cap(coordinator, session, monkeypatch):
    monkeypatch.setattr(service, "MAX_ACTIVE_API_KEYS", 2)
    client = make_user(coordinator, "client")
    make_api_key(coordinator, client, "k1")
    second = coordinator.post("/auth/api-keys", json={"name": "k2"}, headers=client.headers).json()
    assert coordinator.post("/auth/api-keys", json={"name": "k3"}, headers=client.headers).status_code == 409
    coordinator.delete(f"/auth/api-keys/{second['id']}", headers=client.headers)
    assert coordinator.post("/auth/api-keys", json={"name": "k3"}, headers=client.headers).status_code == 201


# --- resolve_api_key (the gateway path) ---------------------------------------------------------


def test_resolve_api_key(coordinator, session):
    client = make_user(coordinator, "client")
    raw = make_api_key(coordinator, client)
    key = service.resolve_api_key(session, raw)
    assert key is not None and key.user_id == client.id
    session.commit()
    session.expire_all()
    first_use = session.get(ApiKey, key.id).last_used_at
    assert first_use is not None
    # Within the minute: no further write.
    again = service.resolve_api_key(session, raw)
    session.commit()
    session.expire_all()
    assert again is not None and session.get(ApiKey, key.id).last_used_at == first_use
    session.rollback()
    listed = coordinator.get("/auth/api-keys", headers=client.headers).json()["api_keys"][0]
    assert listed["last_used_at"] is not None


def test_resolve_api_key_updates_last_used_after_a_minute(coordinator, session):
    client = make_user(coordinator, "client")
    raw = make_api_key(coordinator, client)
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_token(raw))).one()
    old = now_utc() - timedelta(minutes=5)
    row.last_used_at = old
    session.add(row)
    session.commit()
    service.resolve_api_key(session, raw)
    session.commit()
    session.expire_all()
    assert session.get(ApiKey, row.id).last_used_at > old


@pytest.mark.parametrize("raw", [None, "", "om_", "om_nope", "x" * 10_000, "om_" + "a" * 300, "Bearer om_x"])
def test_resolve_api_key_rejects_garbage(coordinator, session, raw):
    client = make_user(coordinator, "client")
    make_api_key(coordinator, client)
    assert service.resolve_api_key(session, raw) is None


def test_resolve_api_key_refuses_inactive_owner(coordinator, session):
    client = make_user(coordinator, "client")
    raw = make_api_key(coordinator, client)
    user = session.get(User, client.id)
    user.is_active = False
    session.add(user)
    session.commit()
    assert service.resolve_api_key(session, raw) is None
