"""A worker's batch submitted in one request, and work handed straight to a waiting long-poll."""

from __future__ import annotations

import threading
import time

from sqlmodel import Session, select

from backend.core.db import get_engine
from backend.models import Assignment, AssignmentStatus, Job, JobStatus
from tests.backend.coordinator.jobhelpers import BackgroundRequest, honest_output, poll
from tests.backend.coordinator.test_jobs_flow import setup_pool
from tests.factories import admin_login, make_user, make_worker


def _demo_jobs(coordinator, settings, n: int) -> None:
    admin = admin_login(coordinator, settings)
    r = coordinator.post("/admin/jobs/enqueue-demo", json={"count": n, "job_type": "embed"}, headers=admin.headers)
    assert r.status_code == 201, r.text


def _batch(coordinator, worker, max_items: int = 16) -> list[dict]:
    r = coordinator.post("/jobs/poll-batch", json={"worker_id": worker.id, "max_items": max_items, "wait_seconds": 0},
                         headers=worker.owner.headers)
    assert r.status_code == 200, r.text
    return r.json()["assignments"]


def _item(worker, a: dict, output: dict | None = None) -> dict:
    body = worker.sign(a["assignment_id"], a["nonce"], output or honest_output(a["job"]))
    body.pop("worker_id")
    body["metrics_json"] = {"num_tokens": 7, "truncated": False}
    return body


def _submit_batch(coordinator, worker, items: list[dict]):
    return coordinator.post("/jobs/submit-batch", json={"worker_id": worker.id, "results": items},
                            headers=worker.owner.headers)


def test_two_batches_verify_every_job_in_one_request_each(coordinator, settings):
    owners = [make_user(coordinator, "worker_owner") for _ in range(2)]
    w1, w2 = (make_worker(coordinator, o, specs={"max_concurrency": 16}) for o in owners)
    _demo_jobs(coordinator, settings, 5)
    b1, b2 = _batch(coordinator, w1), _batch(coordinator, w2)
    assert len(b1) == len(b2) == 5

    first = _submit_batch(coordinator, w1, [_item(w1, a) for a in b1])
    assert first.status_code == 200, first.text
    assert [r["status_code"] for r in first.json()["results"]] == [200] * 5
    assert {r["job_status"] for r in first.json()["results"]} == {"queued"}

    second = _submit_batch(coordinator, w2, [_item(w2, a) for a in reversed(b2)])
    answers = second.json()["results"]
    assert [r["assignment_id"] for r in answers] == [a["assignment_id"] for a in reversed(b2)]  # request order
    assert {r["job_status"] for r in answers} == {"verified"}
    with Session(get_engine()) as s:
        assert {j.status for j in s.exec(select(Job)).all()} == {JobStatus.verified}


def test_each_result_of_a_batch_is_answered_on_its_own(coordinator, settings):
    owners = [make_user(coordinator, "worker_owner") for _ in range(2)]
    w1, _w2 = (make_worker(coordinator, o, specs={"max_concurrency": 16}) for o in owners)
    _demo_jobs(coordinator, settings, 3)
    good, forged, stale = _batch(coordinator, w1)
    bad_sig = _item(w1, forged)
    bad_sig["signature"] = _item(w1, good)["signature"]  # a valid signature, of another submission
    items = [_item(w1, good), bad_sig, {**_item(w1, stale), "nonce": "not-the-nonce"}, _item(w1, good)]
    r = _submit_batch(coordinator, w1, items)
    assert r.status_code == 200, r.text
    codes = [(x["status_code"], x.get("detail", "")) for x in r.json()["results"]]
    assert codes[0][0] == 200
    assert codes[1] == (400, "Signature verification failed")
    assert codes[2] == (400, "Invalid nonce")
    assert codes[3] == (409, "Assignment already submitted")
    with Session(get_engine()) as s:
        statuses = {a.id: a.status for a in s.exec(select(Assignment).where(Assignment.worker_id == w1.id)).all()}
    assert statuses[good["assignment_id"]] == AssignmentStatus.submitted
    assert statuses[forged["assignment_id"]] == AssignmentStatus.running  # still usable until its lease ends


def test_a_batch_for_someone_elses_worker_or_assignment_is_refused(coordinator, settings):
    owners = [make_user(coordinator, "worker_owner") for _ in range(2)]
    w1, w2 = (make_worker(coordinator, o, specs={"max_concurrency": 16}) for o in owners)
    _demo_jobs(coordinator, settings, 1)
    (a1,) = _batch(coordinator, w1)
    r = coordinator.post("/jobs/submit-batch", json={"worker_id": w1.id, "results": [_item(w1, a1)]},
                         headers=w2.owner.headers)
    assert r.status_code == 404
    (a2,) = _batch(coordinator, w2)
    r = _submit_batch(coordinator, w1, [_item(w1, a2)])  # w2's assignment in w1's batch
    assert r.json()["results"][0]["status_code"] == 404
    assert _submit_batch(coordinator, w1, []).status_code == 422


def test_a_waiting_long_poll_gets_the_job_handed_over(coordinator, settings):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    got: dict[int, dict | None] = {}

    def wait(worker) -> None:
        got[worker.id] = poll(coordinator, worker, wait=10)

    pollers = [threading.Thread(target=wait, args=(w,)) for w in (w1, w2)]
    for t in pollers:
        t.start()
    time.sleep(0.5)  # both long-polls are waiting now
    req = BackgroundRequest(coordinator, "/internal/jobs",
                            {"api_key": key, "job_type": "embed", "payload": {"text": "handed"}, "wait_seconds": 20})
    req.start()
    for t in pollers:
        t.join(10)
    a1, a2 = got[w1.id], got[w2.id]
    assert a1 and a2 and a1["job"]["job_id"] == a2["job"]["job_id"]
    with Session(get_engine()) as s:
        rows = s.exec(select(Assignment).where(Assignment.job_id == a1["job"]["job_id"])).all()
        assert {a.status for a in rows} == {AssignmentStatus.running}  # leased when the job was admitted
        assert all(a.lease_expires_at is not None for a in rows)
    for worker, a in ((w1, a1), (w2, a2)):
        body = worker.sign(a["assignment_id"], a["nonce"], honest_output(a["job"]))
        assert coordinator.post("/jobs/submit", json=body, headers=worker.owner.headers).status_code == 200
    assert req.result().status_code == 200


def test_a_hand_off_that_finds_its_poll_gone_goes_back_to_pending(coordinator, settings):
    from backend.coordinator.jobs import notify, scheduling

    _, _, _, (w1, _w2) = setup_pool(coordinator, settings)
    _demo_jobs(coordinator, settings, 1)
    (a,) = _batch(coordinator, w1)
    with Session(get_engine()) as s:
        s.exec(select(Assignment).where(Assignment.id == a["assignment_id"])).one()
    # The delivery of a leased assignment to a worker with no waiting poll: it is given back.
    scheduling.give_back([a["assignment_id"]])
    with Session(get_engine()) as s:
        row = s.get(Assignment, a["assignment_id"])
        assert row.status == AssignmentStatus.pending and row.leased_at is None
    again = poll(coordinator, w1)
    assert again is not None and again["assignment_id"] == a["assignment_id"]
    assert not notify.accepts_handoff(w1.id)


def test_concurrent_batches_with_a_backlog_never_deadlock(coordinator, settings):
    """Regression (PostgreSQL): a batch filling the backlog used to wait on jobs another batch held."""
    from tests.backend.coordinator.jobhelpers import run_concurrently

    owners = [make_user(coordinator, "worker_owner") for _ in range(3)]
    workers = [make_worker(coordinator, o, specs={"max_concurrency": 12}) for o in owners]
    _demo_jobs(coordinator, settings, 30)  # 60 replicas for 36 slots: a backlog waits
    for _round in range(4):
        leased = {w.id: _batch(coordinator, w, max_items=12) for w in workers}
        chunks = [(w, leased[w.id][i:i + 4]) for w in workers for i in range(0, len(leased[w.id]), 4)]
        chunks = [c for c in chunks if c[1]]
        if not chunks:
            break
        results = run_concurrently(len(chunks), lambda i: _submit_batch(
            coordinator, chunks[i][0], [_item(chunks[i][0], a) for a in chunks[i][1]]))
        for r in results:
            assert not isinstance(r, Exception), r
            assert r.status_code == 200, r.text
            assert {x["status_code"] for x in r.json()["results"]} == {200}, r.text
    with Session(get_engine()) as s:
        statuses = [j.status for j in s.exec(select(Job)).all()]
    assert statuses.count(JobStatus.verified) == 30


def test_a_hand_off_given_back_after_its_worker_left_goes_to_another_worker(coordinator, settings):
    from backend.coordinator.jobs import scheduling

    owners = [make_user(coordinator, "worker_owner") for _ in range(3)]
    w1, w2, w3 = (make_worker(coordinator, o, specs={"max_concurrency": 4, "estimated_latency_ms": 10 * (i + 1)})
                  for i, o in enumerate(owners))
    _demo_jobs(coordinator, settings, 1)
    (a,) = _batch(coordinator, w1)  # running, as a hand-off would be
    r = coordinator.post(f"/workers/{w1.id}/drain", json={"reason": "t"}, headers=w1.owner.headers)
    assert r.status_code == 200, r.text
    scheduling.give_back([a["assignment_id"]])  # the poll it was meant for is gone
    with Session(get_engine()) as s:
        row = s.get(Assignment, a["assignment_id"])
        assert row.status == AssignmentStatus.expired  # not pending for a worker that takes nothing new
        others = s.exec(select(Assignment).where(Assignment.job_id == a["job"]["job_id"],
                                                 Assignment.worker_id != w1.id)).all()
    assert {o.worker_id for o in others} == {w2.id, w3.id}
