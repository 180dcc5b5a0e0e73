"""A fake coordinator (httpx.MockTransport) that checks what the worker sends like the real one does."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from backend.core.canonical import b64url_decode, output_hash, signing_payload


def assignment(aid: int, job_type: str = "embed", payload: dict | None = None) -> dict[str, Any]:
    payload = payload if payload is not None else {"text": f"text {aid}"}
    return {
        "assignment_id": aid,
        "nonce": f"nonce-{aid}",
        "job": {"job_id": 1000 + aid, "job_type": job_type, "payload": payload, "request_id": f"req-{aid}"},
    }


class FakeCoordinator:
    """Serves queued batches on /jobs/poll-batch and verifies each /jobs/submit."""

    def __init__(self, verify_key: VerifyKey, *, worker_id: int = 7) -> None:
        self.verify_key = verify_key
        self.worker_id = worker_id
        self.batches: list[list[dict[str, Any]]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.submissions: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.logins = 0
        self.refreshes = 0
        self.polls = 0
        self.conflict_ids: set[int] = set()
        self.fail_next_polls = 0
        self.expire_token_once = False
        self.poll_batch_enabled = True
        self.on_poll: Callable[[FakeCoordinator], None] | None = None
        self.lock = threading.Lock()
        self._token_n = 0
        self.valid_access: set[str] = set()

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _tokens(self) -> dict[str, str]:
        self._token_n += 1
        access = f"access-{self._token_n}"
        self.valid_access.add(access)
        return {"access_token": access, "refresh_token": f"refresh-{self._token_n}", "token_type": "bearer"}

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        path = request.url.path
        with self.lock:
            self.requests.append((path, body))
        if path == "/auth/login":
            self.logins += 1
            if body.get("password") != "pw":
                return httpx.Response(401, json={"detail": "Incorrect email or password"})
            return httpx.Response(200, json=self._tokens())
        if path == "/auth/refresh":
            self.refreshes += 1
            return httpx.Response(200, json=self._tokens())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.expire_token_once:
            self.expire_token_once = False
            self.valid_access.clear()
        if token not in self.valid_access:
            return httpx.Response(401, json={"detail": "Could not validate credentials"})
        if body.get("worker_id") not in (None, self.worker_id):
            return httpx.Response(404, json={"detail": "Worker not found"})
        if path == "/workers/heartbeat":
            with self.lock:
                self.heartbeats += 1
            return httpx.Response(200, json={"worker_id": self.worker_id, "last_seen_at": "now"})
        if path == "/workers/register":
            return httpx.Response(
                201,
                json={
                    "id": self.worker_id,
                    "name": body["name"],
                    "status": "offline",
                    "public_key": body["public_key"],
                    "specs_json": body["specs_json"],
                },
            )
        if path == "/jobs/poll-batch":
            if not self.poll_batch_enabled:
                return httpx.Response(404, json={"detail": "Not Found"})
            return self._poll(
                lambda batch: httpx.Response(200, json={"assignments": batch}), body["max_items"]
            )
        if path == "/jobs/poll":

            def one(batch: list[dict[str, Any]]) -> httpx.Response:
                if not batch:
                    return httpx.Response(404, json={"detail": "No assignment available"})
                return httpx.Response(200, json=batch[0])

            return self._poll(one, 1)
        if path == "/jobs/submit":
            return self._submit(body)
        return httpx.Response(404, json={"detail": "Not Found"})

    def _poll(
        self, respond: Callable[[list[dict[str, Any]]], httpx.Response], max_items: int
    ) -> httpx.Response:
        self.polls += 1
        if self.on_poll is not None:
            self.on_poll(self)
        if self.fail_next_polls:
            self.fail_next_polls -= 1
            raise httpx.ConnectError("connection refused")
        batch: list[dict[str, Any]] = []
        if self.batches:
            batch = self.batches[0][:max_items]
            rest = self.batches[0][max_items:]
            self.batches[0:1] = [rest] if rest else []
        return respond(batch)

    def _submit(self, body: dict[str, Any]) -> httpx.Response:
        if output_hash(body["output"]) != body["output_hash"]:
            return httpx.Response(400, json={"detail": "Output hash mismatch"})
        try:
            self.verify_key.verify(
                signing_payload(body["assignment_id"], body["nonce"], body["output_hash"]),
                b64url_decode(body["signature"]),
            )
        except (BadSignatureError, ValueError):
            return httpx.Response(400, json={"detail": "Signature verification failed"})
        if body["nonce"] != f"nonce-{body['assignment_id']}":
            return httpx.Response(400, json={"detail": "Invalid nonce"})
        if body["assignment_id"] in self.conflict_ids:
            return httpx.Response(409, json={"detail": "Assignment already submitted"})
        with self.lock:
            self.submissions.append(body)
        return httpx.Response(200, json={"status": "accepted"})
