"""Drive jobs through the coordinator as the gateway and as (honest or lying) workers would."""

from __future__ import annotations

import math
import random
import threading
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import TestWorker

INTERNAL = {"X-Internal-Token": "test-internal-token"}


def unit(vec: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in vec))
    return [x / n for x in vec]


def fake_embedding(text: str) -> list[float]:
    """Deterministic stand-in for the model: honest workers agree on it, liars do not."""
    rng = random.Random(text)
    return unit([rng.uniform(-1, 1) for _ in range(384)])


def honest_output(job: dict[str, Any]) -> dict[str, Any]:
    p = job["payload"]
    if job["job_type"] == "embed":
        return {"embedding": fake_embedding(p["text"])}
    q = fake_embedding(p["query"])
    scores = [sum(a * b for a, b in zip(q, fake_embedding(t), strict=True)) for t in p["texts"]]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return {"indices": order, "scores": [scores[i] for i in order]}


def poll(client: TestClient, worker: TestWorker, wait: float = 0) -> dict[str, Any] | None:
    r = client.post("/jobs/poll", json={"worker_id": worker.id, "wait_seconds": wait}, headers=worker.owner.headers)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()


def submit(client: TestClient, worker: TestWorker, item: dict[str, Any], output: dict[str, Any] | None = None):
    output = output if output is not None else honest_output(item["job"])
    body = worker.sign(item["assignment_id"], item["nonce"], output)
    body["metrics_json"] = {"num_tokens": 7, "truncated": False}
    return client.post("/jobs/submit", json=body, headers=worker.owner.headers)


def work_once(client: TestClient, worker: TestWorker, output=None) -> dict[str, Any] | None:
    item = poll(client, worker)
    if item is None:
        return None
    r = submit(client, worker, item, output(item["job"]) if callable(output) else output)
    assert r.status_code == 200, r.text
    return item


class BackgroundRequest(threading.Thread):
    """A gateway call held open by the coordinator while the test plays the workers."""

    # The TestClient cannot shut its app down while another thread's request is in flight (it hangs),
    # so the `coordinator` fixture joins every request still open before it exits.
    open_requests: list[BackgroundRequest] = []

    def __init__(self, client: TestClient, path: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.client, self.path, self.body, self.response = client, path, body, None
        BackgroundRequest.open_requests.append(self)

    @classmethod
    def join_all(cls, timeout: float = 60) -> None:
        while cls.open_requests:
            cls.open_requests.pop().join(timeout)

    def run(self) -> None:
        self.response = self.client.post(self.path, json=self.body, headers=INTERNAL)

    def result(self, timeout: float = 30):
        self.join(timeout)
        assert not self.is_alive(), "request did not finish"
        return self.response


def wait_for_assignment(client: TestClient, worker: TestWorker, tries: int = 100) -> dict[str, Any]:
    for _ in range(tries):
        item = poll(client, worker, wait=0.2)
        if item is not None:
            return item
    raise AssertionError("no assignment arrived")


def embed_request(client: TestClient, key: str, text: str = "hello", wait: float = 20) -> BackgroundRequest:
    """Start a gateway-style embed request that the coordinator holds open until it is verified."""
    req = BackgroundRequest(client, "/internal/jobs",
                            {"api_key": key, "job_type": "embed", "payload": {"text": text}, "wait_seconds": wait})
    req.start()
    return req


def run_concurrently(n: int, target) -> list:
    """Call target(0..n-1) from n threads released together; each result or raised exception, in order."""
    results: list = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
