"""Workers' job API: (long-)poll for assignments and submit signed results."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.coordinator.deps import TokenUserId
from backend.coordinator.jobs import notify, service
from backend.coordinator.jobs.schemas import PollBatchIn, PollIn, SubmitBatchIn, SubmitIn
from backend.coordinator.workers.service import needs_touch, require_can_work, worker_for_work
from backend.core.db import get_engine, read_only
from backend.core.errors import NotFound
from backend.core.jsonresp import FastJSONResponse

router = APIRouter(tags=["jobs"])


def _claim(user_id: int, worker_id: int, max_items: int, woken: bool) -> list[dict[str, Any]]:
    with Session(get_engine(), expire_on_commit=False) as session:
        if not woken:
            # Most first polls find nothing (the worker just submitted): answer them from a read
            # transaction, without queueing for SQLite's single writer.
            worker = worker_for_work(read_only(session), user_id, worker_id)
            require_can_work(worker)
            pending = service.has_pending(session, worker_id)
            session.commit()
            if not needs_touch(worker):
                if not pending:
                    return []
                items = service.lease(session, worker_id, max_items)
                session.commit()
                return items
        # Woken for new work, or liveness is due: caller, liveness and lease in one write transaction.
        worker = worker_for_work(session, user_id, worker_id)
        items = service.claim(session, worker, max_items)
        session.commit()
        return items


async def _long_poll(user_id: int, worker_id: int, max_items: int,
                     wait_seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait_seconds
    woken = False
    topic = notify.worker_topic(worker_id)
    with notify.subscription(topic) as ev, notify.mailbox(worker_id, max_items, ev) as mb:
        while True:
            # Work handed over by an admission of this process needs no claim transaction.
            items = notify.take(mb)
            if not items:
                items = await run_in_threadpool(_claim, user_id, worker_id, max_items, woken)
                extra, room = notify.take(mb), max(0, max_items - len(items))
                items, mb.items = items + extra[:room], extra[room:]  # any excess goes back on exit
            remaining = deadline - time.monotonic()
            if items or remaining <= 0:
                return items
            # The event is the fast path; the 5 s cap re-checks in case a hint was lost.
            woken = await notify.wait(ev, min(remaining, 5.0))


@router.post("/jobs/poll")
async def poll(body: PollIn, user_id: TokenUserId) -> dict[str, Any]:
    items = await _long_poll(user_id, body.worker_id, 1, body.wait_seconds)
    if not items:
        raise NotFound("No assignment available")
    return FastJSONResponse(items[0])


@router.post("/jobs/poll-batch")
async def poll_batch(body: PollBatchIn, user_id: TokenUserId) -> dict[str, Any]:
    return FastJSONResponse({"assignments": await _long_poll(user_id, body.worker_id, body.max_items,
                                                             body.wait_seconds)})


def _submit(user_id: int, body: SubmitIn) -> dict[str, Any]:
    # One session, one transaction, one thread hop (the token was checked on the event loop).
    with Session(get_engine(), expire_on_commit=False) as session:
        worker = worker_for_work(session, user_id, body.worker_id)
        try:
            result = service.submit(session, worker, body)
        except service.SignedInvalidOutput:
            session.commit()  # the strike stands; the answer is still a 422
            raise
        session.commit()
        return result


@router.post("/jobs/submit")
async def submit(body: SubmitIn, user_id: TokenUserId) -> dict[str, Any]:
    return await run_in_threadpool(_submit, user_id, body)


def _submit_batch(user_id: int, body: SubmitBatchIn) -> list[dict[str, Any]]:
    with Session(get_engine(), expire_on_commit=False) as session:
        worker = worker_for_work(session, user_id, body.worker_id)
        answers = service.submit_many(session, worker, body.results)
        session.commit()
        return answers


@router.post("/jobs/submit-batch")
async def submit_batch(body: SubmitBatchIn, user_id: TokenUserId) -> dict[str, Any]:
    """Each result gets its own status_code (200, or the 4xx /jobs/submit would have answered) and
    detail; the results that were accepted stay accepted whatever happens to their batch-mates."""
    return FastJSONResponse({"results": await run_in_threadpool(_submit_batch, user_id, body)})
