"""Time to first render of Workers and Jobs with 1,000 workers and 100,000 jobs (opt-in: OPENMESH_BENCH=1).

    OPENMESH_BENCH=1 .venv/bin/python -m pytest tests/dashboard/test_scale.py -s

Rows are inserted straight into the coordinator's SQLite file (seeding 100k jobs through the API would
take far longer than the measurement); the dashboard reads them only through the coordinator's API.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest

from tests.dashboard.conftest import ADMIN, login, start_coordinator, start_dashboard, stop_process

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("OPENMESH_BENCH") != "1", reason="benchmark: set OPENMESH_BENCH=1"),
]

N_WORKERS = 1_000
N_JOBS = 100_000
BUDGET_SECONDS = 5.0


def _seed(db_path) -> None:
    from sqlalchemy import create_engine, insert

    from backend.core.security import now_utc
    from backend.models import Job, User, Worker

    engine = create_engine(f"sqlite:///{db_path}")
    now = now_utc()
    with engine.begin() as conn:
        owner_id = conn.execute(
            insert(User).values(
                email="bench-owner@dashboard.test",
                password_hash="x",
                created_at=now,
                role="worker_owner",
                is_active=True,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(Worker),
            [
                {
                    "name": f"bench-{i:04d}",
                    "owner_user_id": owner_id,
                    "region": "bench",
                    "specs_json": {},
                    "status": ("online", "offline", "draining", "banned")[i % 4],
                    "reputation": (i % 100) / 100,
                    "created_at": now,
                }
                for i in range(N_WORKERS)
            ],
        )
        batch = []
        for i in range(N_JOBS):
            batch.append(
                {
                    "job_type": "embed" if i % 2 else "rank",
                    "payload": {"text": f"job {i}"},
                    "status": ("queued", "verified", "failed", "cancelled")[i % 4],
                    "is_demo": True,
                    "created_at": now - timedelta(seconds=i),
                    "deadline_at": now + timedelta(minutes=5),
                    "price": 0,
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(Job), batch)
                batch = []
        if batch:
            conn.execute(insert(Job), batch)


def test_first_render_with_1000_workers_and_100k_jobs(browser, tmp_path):
    from dashboard import run

    url, coord, db = start_coordinator(tmp_path)
    procs = []
    try:
        _seed(db)
        base, procs = start_dashboard(url, "http://127.0.0.1:9", tmp_path)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.base = base
        login(page, ADMIN, "/workers")
        page.locator("#workers-table").wait_for()
        timings = {}
        for path, selector in (("/workers", "#workers-table"), ("/jobs", "#jobs-table")):
            start = time.perf_counter()
            page.goto(base + path)
            page.locator(selector).wait_for()
            timings[path] = time.perf_counter() - start
        print(f"\nfirst render (full page load, logged in): {timings}")
        page.goto(base + "/workers")
        assert page.locator("#workers-count").inner_text().startswith(f"{N_WORKERS} / {N_WORKERS}")
        page.goto(base + "/jobs")
        assert page.locator("#jobs-count").inner_text().startswith(f"{N_JOBS} ")
        for path, seconds in timings.items():
            assert seconds < BUDGET_SECONDS, f"{path} took {seconds:.2f}s"
        context.close()
    finally:
        run.stop(procs)
        stop_process(coord)
