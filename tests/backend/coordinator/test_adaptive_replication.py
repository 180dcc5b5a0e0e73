"""ADAPTIVE_REPLICATION: a trusted worker runs a sampled share of client jobs alone (off by default)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from backend.coordinator.jobs.scheduling import create_job
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.models import JobType, Worker
from tests.backend.coordinator.jobhelpers import BackgroundRequest, submit, wait_for_assignment
from tests.backend.coordinator.test_jobs_flow import setup_pool


def _set_reputation(value: float) -> None:
    with Session(get_engine()) as s:
        s.exec(update(Worker).values(reputation=value))  # type: ignore[call-overload]
        s.commit()


def _replicas(n: int = 20) -> list[int]:
    """replicas_needed of n fresh client jobs (each rolled back, so every worker keeps free slots)."""
    out = []
    with Session(get_engine(), expire_on_commit=False) as s:
        for i in range(n):
            out.append(create_job(s, job_type=JobType.embed, payload={"text": f"t{i}"}).replicas_needed)
            s.rollback()
    return out


def test_off_by_default_every_client_job_runs_twice(coordinator, settings):
    setup_pool(coordinator, settings)
    _set_reputation(1.0)
    assert get_settings().adaptive_replication is False
    assert set(_replicas()) == {2}


def test_trusted_workers_run_sampled_jobs_alone(coordinator, settings, monkeypatch):
    setup_pool(coordinator, settings)
    monkeypatch.setenv("ADAPTIVE_REPLICATION", "true")
    monkeypatch.setenv("ADAPTIVE_MIN_REPUTATION", "0.95")
    monkeypatch.setenv("ADAPTIVE_RECHECK_RATE", "0")
    get_settings.cache_clear()
    _set_reputation(0.9)  # below the threshold: still two replicas
    assert set(_replicas()) == {2}
    _set_reputation(0.99)
    assert set(_replicas()) == {1}
    monkeypatch.setenv("ADAPTIVE_RECHECK_RATE", "1")  # every job re-checked: two replicas again
    get_settings.cache_clear()
    assert set(_replicas()) == {2}
    monkeypatch.setenv("ADAPTIVE_RECHECK_RATE", "0.5")
    get_settings.cache_clear()
    mixed = _replicas(200)
    assert 40 < mixed.count(2) < 160 and 40 < mixed.count(1) < 160


def test_single_replica_job_is_answered_with_method_single(coordinator, settings, monkeypatch):
    _, _, key, (w1, w2) = setup_pool(coordinator, settings)
    monkeypatch.setenv("ADAPTIVE_REPLICATION", "true")
    monkeypatch.setenv("ADAPTIVE_RECHECK_RATE", "0")
    monkeypatch.setenv("AUDIT_RATE", "0")
    get_settings.cache_clear()
    _set_reputation(1.0)
    req = BackgroundRequest(coordinator, "/internal/jobs",
                            {"api_key": key, "job_type": "embed", "payload": {"text": "alone"},
                             "wait_seconds": 20})
    req.start()
    # Equal reputation and latency: the first-ranked worker (lowest id) takes it alone.
    item = wait_for_assignment(coordinator, w1)
    assert submit(coordinator, w1, item).json()["job_status"] == "verified"
    r = req.result()
    assert r.status_code == 200, r.text
    assert r.json()["verification"]["method"] == "single"
    assert [w["worker_id"] for w in r.json()["verification"]["workers"]] == [w1.id]
