"""Adversarial tests of /jobs/submit-batch, hand-off to waiting long-polls and heartbeat coalescing.

Regression tests of the behaviour the architecture promises; four began as strict xfails that
reproduced bugs (hand-off to a deactivated or just-banned worker, batch size over the body limit,
verdicts out of request order), fixed since.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from sqlmodel import Session, col, select

from backend.core.db import get_engine
from backend.models import Assignment, AssignmentStatus, Job, JobStatus, User, Worker, WorkerStatus
from tests.backend.coordinator.jobhelpers import (
    BackgroundRequest,
    fake_embedding,
    honest_output,
    poll,
)
from tests.factories import admin_login, credit, make_api_key, make_user, make_worker

# --- helpers -------------------------------------------------------------------------------------


def _demo_jobs(coordinator, settings, n: int) -> list[int]:
    admin = admin_login(coordinator, settings)
    r = coordinator.post(
        "/admin/jobs/enqueue-demo", json={"count": n, "job_type": "embed"}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    return r.json()["job_ids"]


def _batch(coordinator, worker, max_items: int = 16, wait: float = 0) -> list[dict]:
    r = coordinator.post(
        "/jobs/poll-batch",
        json={"worker_id": worker.id, "max_items": max_items, "wait_seconds": wait},
        headers=worker.owner.headers,
    )
    assert r.status_code == 200, r.text
    return r.json()["assignments"]


def _item(worker, a: dict, output: dict | None = None) -> dict:
    body = worker.sign(
        a["assignment_id"], a["nonce"], output if output is not None else honest_output(a["job"])
    )
    body.pop("worker_id")
    body["metrics_json"] = {"num_tokens": 7, "truncated": False}
    return body


def _give_up(worker, a: dict, message: str = "out of memory") -> dict:
    body = worker.sign(a["assignment_id"], a["nonce"], {})
    body.pop("worker_id")
    body.pop("output")
    body["error_message"] = message
    return body


def _submit_batch(coordinator, worker, items: list[dict]):
    return coordinator.post(
        "/jobs/submit-batch", json={"worker_id": worker.id, "results": items}, headers=worker.owner.headers
    )


def _codes(r) -> list[int]:
    assert r.status_code == 200, r.text
    return [x["status_code"] for x in r.json()["results"]]


def _lie(text: str) -> dict:
    return {"embedding": fake_embedding("not " + text)}


def _zero() -> dict:
    return {"embedding": [0.0] * 384}


def _assignment(aid: int) -> Assignment:
    with Session(get_engine()) as s:
        return s.get(Assignment, aid)


def _worker_row(wid: int) -> Worker:
    with Session(get_engine()) as s:
        return s.get(Worker, wid)


def _rows_of(worker_id: int) -> list[Assignment]:
    with Session(get_engine()) as s:
        return list(
            s.exec(
                select(Assignment).where(Assignment.worker_id == worker_id).order_by(col(Assignment.id))
            ).all()
        )


def _invariants_ok() -> None:
    from backend.coordinator.ledger.service import verify_invariants

    with Session(get_engine()) as s:
        report = verify_invariants(s)
    assert report["ok"] is True and report["problems"] == [], report


def _charges_per_job() -> dict[int, int]:
    from backend.models.ledger import LedgerTransaction

    out: dict[int, int] = {}
    with Session(get_engine()) as s:
        for key in s.exec(select(LedgerTransaction.idempotency_key)).all():
            if key.startswith("job:") and key.endswith(":charge"):
                jid = int(key.split(":")[1])
                out[jid] = out.get(jid, 0) + 1
    return out


def _wait_until(pred, timeout: float = 5.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def _set_inactive(user_id: int) -> None:
    with Session(get_engine()) as s:
        u = s.get(User, user_id)
        u.is_active = False
        s.add(u)
        s.commit()


class _Poller(threading.Thread):
    def __init__(self, coordinator, worker, path="/jobs/poll-batch", max_items=16, wait=5.0):
        super().__init__(daemon=True)
        self.coordinator, self.worker, self.path, self.max_items, self.wait = (
            coordinator,
            worker,
            path,
            max_items,
            wait,
        )
        self.response = None

    def run(self) -> None:
        body = {"worker_id": self.worker.id, "wait_seconds": self.wait}
        if self.path.endswith("batch"):
            body["max_items"] = self.max_items
        self.response = self.coordinator.post(self.path, json=body, headers=self.worker.owner.headers)

    def result(self, timeout: float = 30):
        self.join(timeout)
        assert not self.is_alive(), "poll did not finish"
        return self.response


def _waiting_poll(coordinator, worker, **kw) -> _Poller:
    from backend.coordinator.jobs import notify

    p = _Poller(coordinator, worker, **kw)
    p.start()
    assert _wait_until(lambda: notify.accepts_handoff(worker.id)), "the long-poll never started waiting"
    time.sleep(0.05)
    return p


def _pool(coordinator, n: int, concurrency: int = 8, latencies: list[int] | None = None):
    owners = [make_user(coordinator, "worker_owner") for _ in range(n)]
    latencies = latencies or [100 + i for i in range(n)]
    return [
        make_worker(coordinator, o, specs={"max_concurrency": concurrency, "estimated_latency_ms": lat})
        for o, lat in zip(owners, latencies, strict=True)
    ]


# --- submit-batch --------------------------------------------------------------------------------


def test_duplicates_in_one_batch_are_answered_once_each(coordinator, settings):
    w1, _w2 = _pool(coordinator, 2)
    _demo_jobs(coordinator, settings, 2)
    a, b = _batch(coordinator, w1)
    forged = _item(w1, b)
    forged["signature"] = _item(w1, a)["signature"]
    r = _submit_batch(coordinator, w1, [_item(w1, a), _item(w1, a), forged, _item(w1, b), _item(w1, b)])
    res = r.json()["results"]
    assert _codes(r) == [200, 409, 400, 200, 409]
    assert [x["assignment_id"] for x in res] == [a["assignment_id"]] * 2 + [b["assignment_id"]] * 3
    assert res[1]["detail"] == "Assignment already submitted"
    assert _assignment(a["assignment_id"]).status == AssignmentStatus.submitted
    assert _assignment(b["assignment_id"]).status == AssignmentStatus.submitted


def test_other_workers_unknown_and_other_jobs_assignments(coordinator, settings):
    w1, w2 = _pool(coordinator, 2)
    _demo_jobs(coordinator, settings, 2)
    mine, theirs = _batch(coordinator, w1), _batch(coordinator, w2)
    assert len(mine) == len(theirs) == 2
    # w2's assignment signed by w2 and by w1, an unknown id, and w1's own two (different jobs).
    items = [
        _item(w2, theirs[0]),
        _item(w1, theirs[1]),
        {**_item(w1, mine[0]), "assignment_id": 10**9},
        _item(w1, mine[0]),
        _item(w1, mine[1]),
    ]
    r = _submit_batch(coordinator, w1, items)
    assert _codes(r) == [404, 404, 404, 200, 200]
    assert {x["job_status"] for x in r.json()["results"][3:]} == {"queued"}
    for t in theirs:  # untouched: still w2's to submit
        assert _assignment(t["assignment_id"]).status == AssignmentStatus.running
    r = _submit_batch(coordinator, w2, [_item(w2, t) for t in theirs])
    assert _codes(r) == [200, 200]
    assert {x["job_status"] for x in r.json()["results"]} == {"verified"}


def test_a_worker_signing_garbage_is_banned_mid_batch(coordinator, settings):
    """Fraud threshold 2: the second signed invalid output of one batch bans the worker; the rest of
    its batch is refused and the jobs it held go to other workers."""
    liar, h1, h2 = _pool(coordinator, 3, latencies=[10, 50, 100])
    job_ids = _demo_jobs(coordinator, settings, 3)  # each job to liar + h1 (the two fastest)
    held = sorted(_batch(coordinator, liar), key=lambda a: a["job"]["job_id"])
    assert [a["job"]["job_id"] for a in held] == job_ids
    j1, j2, j3 = held
    r = _submit_batch(
        coordinator, liar, [_item(liar, j3), _item(liar, j1, _zero()), _item(liar, j2, _zero())]
    )
    # Request order: j3 is accepted for now, then j1 and j2 are strikes and the second bans the worker,
    # which discards the j3 result still waiting for its peer (a cheater's answers decide nothing).
    assert _codes(r) == [200, 422, 422]
    w = _worker_row(liar.id)
    assert w.status == WorkerStatus.banned and w.rejected_count == 2
    statuses = {a.job_id: a.status for a in _rows_of(liar.id)}
    assert statuses == {j1["job"]["job_id"]: AssignmentStatus.expired,
                        j2["job"]["job_id"]: AssignmentStatus.expired,
                        j3["job"]["job_id"]: AssignmentStatus.cancelled}
    # Each job got a replacement replica on h2, and the honest pair verifies all three.
    for worker in (h1, h2):
        got = _batch(coordinator, worker)
        assert {a["job"]["job_id"] for a in got} == set(job_ids)
        assert set(_codes(_submit_batch(coordinator, worker, [_item(worker, a) for a in got]))) == {200}
    with Session(get_engine()) as s:
        assert {j.status for j in s.exec(select(Job)).all()} == {JobStatus.verified}
    # The banned worker's later batch is refused as a whole.
    assert _submit_batch(coordinator, liar, [_item(liar, j3)]).status_code == 403


def test_a_result_ahead_of_the_strikes_in_request_order_is_answered_as_submit_would(coordinator, settings):
    liar, h1, _h2 = _pool(coordinator, 3, latencies=[10, 50, 100])
    _demo_jobs(coordinator, settings, 3)
    held = sorted(_batch(coordinator, liar), key=lambda a: a["job"]["job_id"])
    assert (
        _codes(_submit_batch(coordinator, h1, [_item(h1, a) for a in _batch(coordinator, h1)])) == [200] * 3
    )
    j1, j2, j3 = held
    r = _submit_batch(
        coordinator, liar, [_item(liar, j3), _item(liar, j1, _zero()), _item(liar, j2, _zero())]
    )
    # One by one in this order: j3 verifies the job (200), then two strikes ban the worker.
    assert _codes(r) == [200, 422, 422], r.json()
    assert r.json()["results"][0]["job_status"] == "verified"


def test_give_up_items_hand_the_job_on_and_cannot_be_repeated(coordinator, settings):
    w1, w2, w3 = _pool(coordinator, 3, latencies=[10, 50, 100])
    (job_id,) = _demo_jobs(coordinator, settings, 1)
    (a1,) = _batch(coordinator, w1)
    (a2,) = _batch(coordinator, w2)
    bad = _give_up(w1, a1)
    bad["signature"] = _give_up(w2, a2)["signature"]
    r = _submit_batch(coordinator, w1, [bad, _give_up(w1, a1), _give_up(w1, a1), _item(w1, a1)])
    assert _codes(r) == [400, 200, 409, 409]
    assert r.json()["results"][1]["status"] == "expired"
    (a3,) = _batch(coordinator, w3)  # the replacement replica
    assert a3["job"]["job_id"] == job_id
    assert _codes(_submit_batch(coordinator, w2, [_item(w2, a2)])) == [200]
    r = _submit_batch(coordinator, w3, [_item(w3, a3)])
    assert r.json()["results"][0]["job_status"] == "verified"


def test_batch_size_limits_and_malformed_items(coordinator, settings):
    w1, _w2 = _pool(coordinator, 2)
    _demo_jobs(coordinator, settings, 1)
    (a,) = _batch(coordinator, w1)
    assert _submit_batch(coordinator, w1, []).status_code == 422
    filler = [
        {"assignment_id": 10**9 + i, "nonce": "n", "signature": "s", "output_hash": "h"} for i in range(64)
    ]
    assert _submit_batch(coordinator, w1, [*filler, _item(w1, a)]).status_code == 422  # 65 items
    # A schema-invalid item refuses the whole request, and nothing of it is recorded (a retry is safe).
    broken = _item(w1, a)
    del broken["nonce"]
    assert _submit_batch(coordinator, w1, [_item(w1, a), broken]).status_code == 422
    assert _assignment(a["assignment_id"]).status == AssignmentStatus.running
    r = _submit_batch(coordinator, w1, [*filler[:63], _item(w1, a)])  # exactly 64
    codes = _codes(r)
    assert len(codes) == 64 and codes[:63] == [404] * 63 and codes[63] == 200
    assert r.json()["results"][63]["assignment_id"] == a["assignment_id"]


def test_a_full_batch_of_real_embedding_results_is_answered_per_item(coordinator, settings):
    """The batch limit (64, what a poll-batch hands out) fits under MAX_BODY_BYTES with real embeddings."""
    w1, _w2 = _pool(coordinator, 2)
    _demo_jobs(coordinator, settings, 1)
    (a,) = _batch(coordinator, w1)
    real = _item(w1, a)  # a real 384-float result, ~8 KB of JSON
    items = [{**real, "assignment_id": 10**9 + i} for i in range(63)] + [real]
    r = _submit_batch(coordinator, w1, items)
    assert r.status_code == 200, r.text[:200]
    assert _codes(r) == [404] * 63 + [200]
    assert _submit_batch(coordinator, w1, items + [real]).status_code == 422  # 65: over the limit


def test_results_for_finished_jobs_and_expired_leases(coordinator, settings):
    from backend.coordinator.jobs import sweep

    w1, w2 = _pool(coordinator, 2)
    j1, j2 = _demo_jobs(coordinator, settings, 2)
    got = {a["job"]["job_id"]: a for a in _batch(coordinator, w1)}
    admin = admin_login(coordinator, settings)
    assert (
        coordinator.post(f"/admin/jobs/{j1}/cancel", json={"reason": "t"}, headers=admin.headers).status_code
        == 200
    )
    with Session(get_engine()) as s:  # j2's lease runs out
        row = s.get(Assignment, got[j2]["assignment_id"])
        row.lease_expires_at = row.leased_at
        s.add(row)
        s.commit()
    r = _submit_batch(coordinator, w1, [_item(w1, got[j1]), _item(w1, got[j2])])
    res = r.json()["results"]
    assert _codes(r) == [409, 409]
    assert "cancelled" in res[0]["detail"] and res[1]["detail"] == "Assignment lease expired"
    sweep.run_once()
    # The lapsed row is handed to the same worker again (w2 already holds the other replica), with a
    # fresh nonce: the old submission stays refused.
    row = _assignment(got[j2]["assignment_id"])
    assert row.status == AssignmentStatus.pending and row.nonce != got[j2]["nonce"]
    assert _codes(_submit_batch(coordinator, w1, [_item(w1, got[j2])])) == [409]
    (fresh,) = _batch(coordinator, w1)
    assert fresh["assignment_id"] == row.id
    assert _codes(_submit_batch(coordinator, w1, [_item(w1, fresh)])) == [200]
    with Session(get_engine()) as s:
        assert s.get(Job, j1).status == JobStatus.cancelled


def _client_batch(coordinator, settings, texts: list[str]):
    """A client with 10 tokens whose /internal/jobs/batch request for `texts` the coordinator holds open."""
    admin = admin_login(coordinator, settings)
    client_user = make_user(coordinator, "client")
    credit(coordinator, admin, client_user, "10")
    key = make_api_key(coordinator, client_user)
    req = BackgroundRequest(
        coordinator,
        "/internal/jobs/batch",
        {"api_key": key, "job_type": "embed", "payloads": [{"text": t} for t in texts], "wait_seconds": 20},
    )
    req.start()
    return client_user, req


def test_client_batches_retried_are_charged_exactly_once(coordinator, settings):
    w1, w2 = _pool(coordinator, 2)
    client_user, req = _client_batch(coordinator, settings, [f"text {i}" for i in range(6)])
    assert _wait_until(lambda: len(_rows_of(w1.id)) == 6 and len(_rows_of(w2.id)) == 6)
    b1, b2 = _batch(coordinator, w1), _batch(coordinator, w2)
    first1 = _submit_batch(coordinator, w1, [_item(w1, a) for a in b1])
    assert _codes(first1) == [200] * 6
    again1 = _submit_batch(coordinator, w1, [_item(w1, a) for a in b1])  # a retry after a lost answer
    assert _codes(again1) == [409] * 6
    first2 = _submit_batch(coordinator, w2, [_item(w2, a) for a in b2])
    assert {x["job_status"] for x in first2.json()["results"]} == {"verified"}
    again2 = _submit_batch(coordinator, w2, [_item(w2, a) for a in b2])
    assert _codes(again2) == [409] * 6
    again1 = _submit_batch(coordinator, w1, [_item(w1, a) for a in b1])
    assert _codes(again1) == [409] * 6
    r = req.result()
    assert r.status_code == 200, r.text
    prices = sum(Decimal(x["price"]) for x in r.json()["results"])
    charges = _charges_per_job()
    assert sorted(charges) == sorted(x["job_id"] for x in r.json()["results"])
    assert set(charges.values()) == {1}
    bal = coordinator.get("/me/balance", headers=client_user.headers).json()
    assert Decimal(bal["balance"]) == Decimal("10") - prices and Decimal(bal["reserved"]) == 0
    _invariants_ok()


def test_mixed_batch_with_lies_and_money(coordinator, settings):
    """A liar's batch makes disputes; the honest third replicas settle them; every verified job is
    charged once, every failed one refunded, and the ledger adds up."""
    liar, h1, h2 = _pool(coordinator, 3, latencies=[10, 50, 100])
    client_user, req = _client_batch(coordinator, settings, [f"dispute {i}" for i in range(4)])
    assert _wait_until(lambda: len(_rows_of(liar.id)) == 4 and len(_rows_of(h1.id)) == 4)
    bl, bh = _batch(coordinator, liar), _batch(coordinator, h1)
    assert _codes(_submit_batch(coordinator, h1, [_item(h1, a) for a in bh])) == [200] * 4
    # The liar lies on one job only (one rejection: not yet banned) and is honest on the rest.
    lies = [_item(liar, bl[0], _lie(bl[0]["job"]["payload"]["text"]))] + [_item(liar, a) for a in bl[1:]]
    r = _submit_batch(coordinator, liar, lies)
    assert _codes(r) == [200] * 4
    assert [x["job_status"] for x in r.json()["results"]] == ["disputed", "verified", "verified", "verified"]
    (third,) = _batch(coordinator, h2)
    assert third["job"]["job_id"] == bl[0]["job"]["job_id"]
    assert _submit_batch(coordinator, h2, [_item(h2, third)]).json()["results"][0]["job_status"] == "verified"
    resp = req.result()
    assert resp.status_code == 200, resp.text
    assert _worker_row(liar.id).rejected_count == 1
    assert set(_charges_per_job().values()) == {1} and len(_charges_per_job()) == 4
    _invariants_ok()


def test_concurrent_identical_batches_settle_each_job_once(coordinator, settings):
    """The same batch sent twice at once (a client retry racing its first attempt)."""
    from tests.backend.coordinator.jobhelpers import run_concurrently

    admin = admin_login(coordinator, settings)
    client_user = make_user(coordinator, "client")
    credit(coordinator, admin, client_user, "10")
    key = make_api_key(coordinator, client_user)
    w1, w2 = _pool(coordinator, 2)
    req = BackgroundRequest(
        coordinator,
        "/internal/jobs/batch",
        {
            "api_key": key,
            "job_type": "embed",
            "payloads": [{"text": f"race {i}"} for i in range(5)],
            "wait_seconds": 20,
        },
    )
    req.start()
    assert _wait_until(lambda: len(_rows_of(w1.id)) == 5 and len(_rows_of(w2.id)) == 5)
    b1, b2 = _batch(coordinator, w1), _batch(coordinator, w2)
    assert _codes(_submit_batch(coordinator, w1, [_item(w1, a) for a in b1])) == [200] * 5
    items = [_item(w2, a) for a in b2]
    results = run_concurrently(3, lambda _i: _submit_batch(coordinator, w2, items))
    per_item = list(zip(*(_codes(r) for r in results), strict=True))
    assert all(sorted(codes) == [200, 409, 409] for codes in per_item), per_item
    assert req.result().status_code == 200
    assert set(_charges_per_job().values()) == {1} and len(_charges_per_job()) == 5
    _invariants_ok()


# --- hand-off ------------------------------------------------------------------------------------


def test_a_hand_off_whose_poll_left_in_the_same_instant_goes_back_to_pending(
    coordinator, settings, monkeypatch
):
    """The poll was waiting when the admission looked (so the admission leased directly) but has
    timed out by the commit: the assignment must go back to pending, not stay running to its lease."""
    from backend.coordinator.jobs import notify

    w1, w2 = _pool(coordinator, 2)
    monkeypatch.setattr(notify, "accepts_handoff", lambda wid: wid == w1.id)
    (job_id,) = _demo_jobs(coordinator, settings, 1)
    monkeypatch.undo()
    (row,) = _rows_of(w1.id)
    assert _wait_until(lambda: _assignment(row.id).status == AssignmentStatus.pending)
    assert _assignment(row.id).lease_expires_at is None
    again = poll(coordinator, w1)
    assert again is not None and again["assignment_id"] == row.id and again["nonce"] == row.nonce
    (b,) = _batch(coordinator, w2)
    assert _codes(_submit_batch(coordinator, w1, [_item(w1, again)])) == [200]
    r = _submit_batch(coordinator, w2, [_item(w2, b)])
    assert r.json()["results"][0]["job_status"] == "verified"


def test_short_polls_racing_admissions_lose_nothing(coordinator, settings):
    """Long-polls timing out while jobs arrive: every assignment of the worker ends up either
    delivered to a poll or pending; none stays running without anyone having received it."""
    w1, _w2 = _pool(coordinator, 2, concurrency=64)
    received: list[int] = []
    stop = threading.Event()

    def poller() -> None:
        while not stop.is_set():
            for a in _batch(coordinator, w1, max_items=2, wait=0.15):
                received.append(a["assignment_id"])

    t = threading.Thread(target=poller, daemon=True)
    t.start()
    n_jobs = 0
    for i in range(20):
        n_jobs += len(_demo_jobs(coordinator, settings, 1 + i % 3))
        time.sleep(0.03 * (i % 5))
    stop.set()
    t.join(10)
    assert not t.is_alive()

    def settled() -> bool:
        rows = _rows_of(w1.id)
        return all(r.status == AssignmentStatus.pending or r.id in received for r in rows)

    assert _wait_until(settled), [(r.id, r.status) for r in _rows_of(w1.id) if r.id not in received]
    assert len(received) == len(set(received))  # never delivered twice
    rest = _batch(coordinator, w1, max_items=64)
    assert not {a["assignment_id"] for a in rest} & set(received)
    assert len(received) + len(rest) == len(_rows_of(w1.id)) == n_jobs


def test_more_hand_offs_than_max_items_go_back_and_are_polled_later(coordinator, settings):
    w1, _w2 = _pool(coordinator, 2)
    p = _waiting_poll(coordinator, w1, max_items=1, wait=5)
    job_ids = _demo_jobs(coordinator, settings, 3)
    r = p.result()
    assert r.status_code == 200
    (first,) = r.json()["assignments"]
    rows = _rows_of(w1.id)
    assert len(rows) == 3
    rest_ids = {x.id for x in rows} - {first["assignment_id"]}
    assert _wait_until(lambda: {_assignment(i).status for i in rest_ids} == {AssignmentStatus.pending})
    rest = _batch(coordinator, w1)
    assert {a["assignment_id"] for a in rest} == rest_ids
    assert {first["job"]["job_id"], *(a["job"]["job_id"] for a in rest)} == set(job_ids)
    assert _codes(_submit_batch(coordinator, w1, [_item(w1, a) for a in [first, *rest]])) == [200] * 3


def test_two_long_polls_of_one_worker_share_the_work_without_double_leasing(coordinator, settings):
    w1, _w2 = _pool(coordinator, 2)
    p1 = _waiting_poll(coordinator, w1, path="/jobs/poll", wait=6)
    p2 = _waiting_poll(coordinator, w1, path="/jobs/poll", wait=6)
    _demo_jobs(coordinator, settings, 2)
    r1, r2 = p1.result(), p2.result()
    assert r1.status_code == r2.status_code == 200, (r1.text, r2.text)
    a1, a2 = r1.json(), r2.json()
    assert a1["assignment_id"] != a2["assignment_id"]
    assert {r.status for r in _rows_of(w1.id)} == {AssignmentStatus.running}
    assert poll(coordinator, w1) is None
    assert _codes(_submit_batch(coordinator, w1, [_item(w1, a1), _item(w1, a2)])) == [200, 200]


def test_a_drained_worker_waiting_in_a_long_poll_gets_no_hand_off(coordinator, settings):
    w1, w2, w3 = _pool(coordinator, 3)
    p = _waiting_poll(coordinator, w1, wait=1.5)
    r = coordinator.post(f"/workers/{w1.id}/drain", json={"reason": "t"}, headers=w1.owner.headers)
    assert r.status_code == 200, r.text
    _demo_jobs(coordinator, settings, 1)
    assert p.result().json()["assignments"] == []
    assert _rows_of(w1.id) == []
    assert len(_batch(coordinator, w2)) == len(_batch(coordinator, w3)) == 1


def _ban(coordinator, settings, worker) -> None:
    admin = admin_login(coordinator, settings)
    r = coordinator.post(f"/admin/workers/{worker.id}/ban", json={"reason": "t"}, headers=admin.headers)
    assert r.status_code == 200, r.text


def test_a_banned_worker_waiting_in_a_long_poll_is_refused(coordinator, settings):
    w1, _w2, _w3 = _pool(coordinator, 3)
    p = _waiting_poll(coordinator, w1, wait=1.5)
    _ban(coordinator, settings, w1)
    _demo_jobs(coordinator, settings, 1)
    assert p.result().status_code == 403
    assert _rows_of(w1.id) == []


def test_a_deactivated_owners_waiting_poll_gets_no_hand_off(coordinator, settings):
    w1, _w2, _w3 = _pool(coordinator, 3)
    p = _waiting_poll(coordinator, w1, wait=3)
    _set_inactive(w1.owner.id)
    _demo_jobs(coordinator, settings, 1)
    r = p.result()
    # Before hand-off the woken poll claimed in a transaction that checked the user: 401.
    assert r.status_code == 401, r.text
    assert all(a.status != AssignmentStatus.running for a in _rows_of(w1.id))


def test_a_worker_banned_in_the_transaction_that_handed_it_work_gets_nothing(coordinator, settings):
    """W1's batch: a give-up of job A (handed to L's waiting poll), then W1's honest result for job B
    settles B's dispute against L, whose second rejection bans it, in the same transaction."""
    # W1 only has room for two jobs, and is the slowest: B goes to W2 and L first.
    owners = [make_user(coordinator, "worker_owner") for _ in range(3)]
    w1 = make_worker(coordinator, owners[0], specs={"max_concurrency": 2, "estimated_latency_ms": 500})
    w2 = make_worker(coordinator, owners[1], specs={"max_concurrency": 8, "estimated_latency_ms": 50})
    liar = make_worker(
        coordinator, owners[2], online=False, specs={"max_concurrency": 8, "estimated_latency_ms": 10}
    )
    (job_a,) = _demo_jobs(coordinator, settings, 1)  # W1 + W2
    (a_w1,) = _batch(coordinator, w1)
    assert (
        coordinator.post(
            "/workers/heartbeat", json={"worker_id": liar.id}, headers=liar.owner.headers
        ).status_code
        == 200
    )
    (job_b,) = _demo_jobs(coordinator, settings, 1)  # L + W2
    assert job_a < job_b
    got_w2 = {a["job"]["job_id"]: a for a in _batch(coordinator, w2)}
    (b_l,) = _batch(coordinator, liar)
    assert b_l["job"]["job_id"] == job_b
    assert _codes(_submit_batch(coordinator, w2, [_item(w2, got_w2[job_a]), _item(w2, got_w2[job_b])])) == [
        200,
        200,
    ]
    # L: one strike (a signed zero vector), then a lie: B is disputed and its third replica goes to W1.
    assert _codes(_submit_batch(coordinator, liar, [_item(liar, b_l, _zero())])) == [422]
    r = _submit_batch(coordinator, liar, [_item(liar, b_l, _lie(b_l["job"]["payload"]["text"]))])
    assert r.json()["results"][0]["job_status"] == "disputed"
    (b_w1,) = _batch(coordinator, w1)
    assert b_w1["job"]["job_id"] == job_b
    p = _waiting_poll(coordinator, liar, wait=3)
    r = _submit_batch(coordinator, w1, [_give_up(w1, a_w1), _item(w1, b_w1)])
    assert _codes(r) == [200, 200]
    assert r.json()["results"][1]["job_status"] == "verified"
    assert _worker_row(liar.id).status == WorkerStatus.banned
    resp = p.result()
    # What the woken poll answered before hand-off: the worker is banned.
    assert resp.status_code == 403, resp.text


# --- heartbeat coalescing and the read-only fast paths -------------------------------------------


def test_a_live_worker_is_never_marked_offline_while_writes_are_coalesced(coordinator, monkeypatch):
    from backend.coordinator.workers.service import mark_stale_offline
    from backend.core.config import get_settings

    monkeypatch.setenv("HEARTBEAT_TIMEOUT_SECONDS", "1.2")
    monkeypatch.setenv("HEARTBEAT_WRITE_INTERVAL_SECONDS", "60")  # capped at a quarter of the timeout
    get_settings.cache_clear()
    try:
        w1, w2 = _pool(coordinator, 2)
        seen: set = set()
        beats = 0
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            if beats % 2:
                r = coordinator.post(
                    "/workers/heartbeat", json={"worker_id": w1.id}, headers=w1.owner.headers
                )
                assert r.status_code == 200 and r.json()["status"] == "online", r.text
            else:
                assert poll(coordinator, w1) is None
            beats += 1
            with Session(get_engine()) as s:
                marked = mark_stale_offline(s)
                s.commit()
            assert w1.id not in marked
            row = _worker_row(w1.id)
            assert row.status == WorkerStatus.online
            seen.add(row.last_seen_at)
            time.sleep(0.05)
        assert 4 <= len(seen) < beats  # coalesced, yet written about every 0.3 s
        assert _worker_row(w2.id).status == WorkerStatus.offline  # the silent one did go
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_a_deactivated_owner_is_refused_even_within_the_write_interval(coordinator, settings):
    w1, _w2 = _pool(coordinator, 2)
    _demo_jobs(coordinator, settings, 1)
    (a,) = _batch(coordinator, w1)
    assert (
        coordinator.post(
            "/workers/heartbeat", json={"worker_id": w1.id}, headers=w1.owner.headers
        ).status_code
        == 200
    )
    _set_inactive(w1.owner.id)
    h = w1.owner.headers
    assert coordinator.post("/workers/heartbeat", json={"worker_id": w1.id}, headers=h).status_code == 401
    assert coordinator.post("/jobs/poll", json={"worker_id": w1.id}, headers=h).status_code == 401
    assert coordinator.post("/jobs/poll-batch", json={"worker_id": w1.id}, headers=h).status_code == 401
    assert _submit_batch(coordinator, w1, [_item(w1, a)]).status_code == 401
    body = w1.sign(a["assignment_id"], a["nonce"], honest_output(a["job"]))
    assert coordinator.post("/jobs/submit", json=body, headers=h).status_code == 401
    assert _assignment(a["assignment_id"]).status == AssignmentStatus.running


def test_a_banned_worker_is_handled_as_before_within_the_write_interval(coordinator, settings):
    w1, w2, _w3 = _pool(coordinator, 3)
    _demo_jobs(coordinator, settings, 2)
    held = _batch(coordinator, w1, max_items=1)
    assert (
        coordinator.post(
            "/workers/heartbeat", json={"worker_id": w1.id}, headers=w1.owner.headers
        ).status_code
        == 200
    )
    _ban(coordinator, settings, w1)
    h = w1.owner.headers
    r = coordinator.post("/workers/heartbeat", json={"worker_id": w1.id}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "banned"
    assert coordinator.post("/jobs/poll", json={"worker_id": w1.id}, headers=h).status_code == 403
    assert (
        coordinator.post(
            "/jobs/poll-batch", json={"worker_id": w1.id, "wait_seconds": 0.2}, headers=h
        ).status_code
        == 403
    )
    assert _submit_batch(coordinator, w1, [_item(w1, held[0])]).status_code == 403
    assert {x.status for x in _rows_of(w1.id)} == {AssignmentStatus.expired}
    assert _worker_row(w1.id).status == WorkerStatus.banned
    # Unbanned: offline until the next heartbeat, which brings it online (and to the backlog).
    assert (
        coordinator.post(
            f"/admin/workers/{w1.id}/unban", json={"reason": "t"}, headers=admin_login(coordinator, settings).headers
        ).status_code
        == 200
    )
    r = coordinator.post("/workers/heartbeat", json={"worker_id": w1.id}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "online"
    assert len(_batch(coordinator, w2)) == 2
