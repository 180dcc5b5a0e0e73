"""Factories that build users, keys and workers through the public API (so tests use the real rules)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from backend.core.canonical import b64url_encode, output_hash, signing_payload

PASSWORD = "Correct-horse-battery-9"


def random_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Account:
    id: int
    email: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(client: TestClient, role: str = "client", email: str | None = None) -> Account:
    email = email or random_email(role)
    r = client.post("/auth/register", json={"email": email, "password": PASSWORD, "role": role})
    assert r.status_code == 201, r.text
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    tokens = r.json()
    me = client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    return Account(me["id"], email, tokens["access_token"], tokens["refresh_token"])


def admin_login(client: TestClient, settings) -> Account:
    r = client.post("/auth/login", json={"email": settings.admin_email, "password": settings.admin_password})
    assert r.status_code == 200, r.text
    tokens = r.json()
    me = client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    return Account(me["id"], settings.admin_email, tokens["access_token"], tokens["refresh_token"])


def make_api_key(client: TestClient, user: Account, name: str = "test-key") -> str:
    r = client.post("/auth/api-keys", json={"name": name}, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()["key"]


def credit(client: TestClient, admin: Account, user: Account, amount: str | Decimal) -> None:
    r = client.post(f"/admin/users/{user.id}/credit", json={"amount": str(amount), "memo": "test"},
                    headers=admin.headers)
    assert r.status_code in (200, 201), r.text


@dataclass
class TestWorker:
    id: int
    owner: Account
    key: SigningKey

    __test__ = False  # not a pytest class

    def sign(self, assignment_id: int, nonce: str, output: dict) -> dict:
        h = output_hash(output)
        sig = self.key.sign(signing_payload(assignment_id, nonce, h)).signature
        return {"worker_id": self.id, "assignment_id": assignment_id, "nonce": nonce,
                "signature": b64url_encode(sig), "output": output, "output_hash": h}


def make_worker(client: TestClient, owner: Account, name: str | None = None, online: bool = True,
                specs: dict | None = None) -> TestWorker:
    key = SigningKey.generate()
    r = client.post("/workers/register", headers=owner.headers, json={
        "name": name or f"w-{uuid.uuid4().hex[:8]}", "region": "test",
        "public_key": b64url_encode(bytes(key.verify_key)),
        "specs_json": specs or {"reputation": 0.9, "estimated_latency_ms": 100, "max_concurrency": 4}})
    assert r.status_code == 201, r.text
    worker = TestWorker(r.json()["id"], owner, key)
    if online:
        assert client.post("/workers/heartbeat", json={"worker_id": worker.id},
                           headers=owner.headers).status_code == 200
    return worker
