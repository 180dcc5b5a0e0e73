"""CoordinatorClient against a fake coordinator: auth and refresh, polls, submit errors, timeouts."""

from __future__ import annotations

import httpx
import pytest

from tests.worker.fakes import FakeCoordinator, assignment
from worker.client import (
    AuthError,
    ConflictError,
    CoordinatorClient,
    CoordinatorUnavailable,
    NotFoundError,
)


@pytest.fixture
def fake(signing_key) -> FakeCoordinator:
    return FakeCoordinator(signing_key.verify_key)


@pytest.fixture
def client(fake):
    with CoordinatorClient("http://coord", email="w@x.io", password="pw", transport=fake.transport) as c:
        yield c


class TestAuth:
    def test_logs_in_lazily_and_sends_bearer(self, client, fake):
        client.heartbeat(7)
        assert fake.logins == 1 and fake.heartbeats == 1

    def test_refreshes_on_401_and_retries(self, client, fake):
        client.heartbeat(7)
        fake.expire_token_once = True
        client.heartbeat(7)
        assert fake.refreshes == 1 and fake.heartbeats == 2

    def test_bad_password_is_auth_error(self, fake):
        with CoordinatorClient("http://coord", email="w@x.io", password="bad", transport=fake.transport) as c:
            with pytest.raises(AuthError):
                c.heartbeat(7)


class TestPoll:
    def test_poll_batch_returns_assignments(self, client, fake):
        fake.batches = [[assignment(1), assignment(2, "rank", {"query": "q", "texts": ["a"]})]]
        items = client.poll_batch(7, max_items=16, wait_seconds=0)
        assert [a.assignment_id for a in items] == [1, 2]
        assert items[1].job.job_type == "rank" and items[1].job.payload == {"query": "q", "texts": ["a"]}
        assert items[0].job.request_id == "req-1"
        path, body = fake.requests[-1]
        assert path == "/jobs/poll-batch" and body == {"worker_id": 7, "max_items": 16, "wait_seconds": 0}

    def test_empty_poll_batch(self, client):
        assert client.poll_batch(7, max_items=4, wait_seconds=0) == []

    def test_falls_back_to_single_poll_without_batch_route(self, client, fake):
        fake.poll_batch_enabled = False
        fake.batches = [[assignment(1), assignment(2)]]
        assert [a.assignment_id for a in client.poll_batch(7, max_items=8)] == [1]
        assert fake.requests[-1][0] == "/jobs/poll"

    def test_poll_404_no_assignment_is_none(self, client):
        assert client.poll(7) is None

    def test_unknown_worker_is_not_found(self, client):
        with pytest.raises(NotFoundError):
            client.poll_batch(99, max_items=1)

    def test_connection_error_is_unavailable(self, client, fake):
        fake.fail_next_polls = 1
        with pytest.raises(CoordinatorUnavailable):
            client.poll_batch(7, max_items=1)

    def test_5xx_is_unavailable(self):
        transport = httpx.MockTransport(lambda r: httpx.Response(503, json={"detail": "down"}))
        with CoordinatorClient("http://coord", access_token="t", transport=transport) as c:
            with pytest.raises(CoordinatorUnavailable):
                c.heartbeat(7)

    def test_poll_read_timeout_exceeds_wait(self):
        seen = {}

        def handler(request: httpx.Request) -> httpx.Response:
            seen.update(request.extensions["timeout"])
            return httpx.Response(200, json={"assignments": []})

        with CoordinatorClient("http://coord", access_token="t", transport=httpx.MockTransport(handler)) as c:
            c.poll_batch(7, max_items=1, wait_seconds=20)
        assert seen["read"] > 20


class TestSubmit:
    def test_conflict_raises_conflict_error(self, client, fake, signing_key):
        from worker.signing import sign_submission

        fake.conflict_ids = {5}
        out = {"embedding": [0.0] * 384}
        h, sig = sign_submission(signing_key, 5, "nonce-5", out)
        with pytest.raises(ConflictError):
            client.submit(
                worker_id=7, assignment_id=5, nonce="nonce-5", signature=sig, output=out, output_hash=h
            )
