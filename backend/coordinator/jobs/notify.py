"""Wake-ups without polling: a job became final, or a worker has new work.

In one process an asyncio.Event per waiter is enough. With REDIS_URL set, every event is also
published on a Redis channel, and a listener task relays events published by the other coordinator
processes, so a gateway request held by process A wakes when process B verifies its job.
Waiters always re-check the database after waking: an event is a hint, never the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from backend.core.config import get_settings

log = logging.getLogger("openmesh.notify")

_loop: asyncio.AbstractEventLoop | None = None
_waiters: dict[str, set[Waiter]] = defaultdict(set)
_redis = None
_listener: asyncio.Task | None = None


def _channel() -> str:
    return f"{get_settings().redis_prefix}:events"


def job_topic(job_id: int) -> str:
    return f"job:{job_id}"


def worker_topic(worker_id: int) -> str:
    return f"worker:{worker_id}"


class Waiter(asyncio.Event):
    """An event that may carry what the waiter would otherwise read back from the database."""

    payload: Any = None


def _wake_local(topic: str, payload: Any = None) -> None:
    for ev in list(_waiters.get(topic, ())):
        ev.payload = payload
        ev.set()


def publish(*topics: str, payloads: dict[str, Any] | None = None) -> None:
    """Wake waiters on these topics. Safe to call from worker threads (sync DB code).

    A payload (e.g. a finished job's view, built in the transaction that just committed) reaches
    waiters in this process only; other processes get the bare topic and read the database.
    """
    if not topics:
        return
    loop = _loop
    if loop is None or loop.is_closed():
        return
    for topic in topics:
        loop.call_soon_threadsafe(_wake_local, topic, (payloads or {}).get(topic))
    if _redis is not None:
        payload = " ".join(topics)
        loop.call_soon_threadsafe(lambda: loop.create_task(_publish_redis(payload)))


async def _publish_redis(payload: str) -> None:
    try:
        await _redis.publish(_channel(), payload)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a lost hint only costs the waiter its re-check interval
        log.warning("redis publish failed", exc_info=True)


def subscribe(topic: str) -> Waiter:
    """Register a waiter; callable from a thread too (e.g. inside the transaction that creates a job,
    before it commits, so no wake-up can come before the subscription)."""
    ev = Waiter()
    _waiters[topic].add(ev)
    return ev


def unsubscribe(topic: str, ev: Waiter) -> None:
    waiters = _waiters.get(topic)
    if waiters is not None:
        waiters.discard(ev)
        if not waiters:
            _waiters.pop(topic, None)


@contextlib.contextmanager
def subscription(topic: str) -> Iterator[Waiter]:
    """Register before checking the database, so an event between check and wait is never lost."""
    ev = subscribe(topic)
    try:
        yield ev
    finally:
        unsubscribe(topic, ev)


async def wait(ev: Waiter, timeout: float) -> bool:
    if timeout <= 0:
        return ev.is_set()
    try:
        await asyncio.wait_for(ev.wait(), timeout)
        return True
    except TimeoutError:
        return False
    finally:
        ev.clear()


async def _listen() -> None:
    while True:
        try:
            pubsub = _redis.pubsub()  # type: ignore[union-attr]
            await pubsub.subscribe(_channel())
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = message["data"]
                for topic in (data.decode() if isinstance(data, bytes) else data).split():
                    _wake_local(topic)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep relaying after a Redis restart
            log.warning("redis listener error; retrying in 1 s", exc_info=True)
            await asyncio.sleep(1)


# --- hand-off: work pushed straight into a waiting long-poll ---------------------------------------
#
# A worker whose long-poll is waiting in this process has a mailbox. A transaction that assigns it a
# job leases the assignment at once (running, with its lease) and, when it commits, drops the item in
# the mailbox: the poll answers without a claim transaction of its own. An item that arrives after
# the poll has ended (timed out, disconnected) or beyond its batch size is given back (running ->
# pending) by `returned`, so nothing is lost; a poll answered but never received is an ordinary
# lease that expires, as before.


class Mailbox:
    def __init__(self, worker_id: int, max_items: int, ev: Waiter) -> None:
        self.worker_id, self.max_items, self.ev = worker_id, max_items, ev
        self.items: list[dict[str, Any]] = []
        self.closed = False


_mailboxes: dict[int, Mailbox] = {}
returned: Any = None
"""Set by the jobs package: callable(assignment_ids) that gives undelivered hand-offs back (runs in a thread)."""


def accepts_handoff(worker_id: int) -> bool:
    """Whether a long-poll of this worker waits here now (a hint read from another thread)."""
    mb = _mailboxes.get(worker_id)
    return mb is not None and not mb.closed and _loop is not None


@contextlib.contextmanager
def mailbox(worker_id: int, max_items: int, ev: Waiter) -> Iterator[Mailbox]:
    mb = Mailbox(worker_id, max_items, ev)
    _mailboxes[worker_id] = mb
    try:
        yield mb
    finally:
        mb.closed = True
        if _mailboxes.get(worker_id) is mb:
            del _mailboxes[worker_id]
        if mb.items:  # delivered while the poll was already leaving
            _give_back([i["assignment_id"] for i in mb.items])
            mb.items = []


def take(mb: Mailbox) -> list[dict[str, Any]]:
    items, mb.items = mb.items, []
    return items


def _deliver(worker_id: int, items: list[dict[str, Any]]) -> None:
    mb = _mailboxes.get(worker_id)
    room = 0 if mb is None or mb.closed else mb.max_items - len(mb.items)
    if room > 0:
        mb.items.extend(items[:room])  # type: ignore[union-attr]
        mb.ev.set()  # type: ignore[union-attr]
    if items[room:]:
        _give_back([i["assignment_id"] for i in items[room:]])


def _give_back(assignment_ids: list[int]) -> None:
    if returned is not None and _loop is not None:
        _loop.run_in_executor(None, returned, assignment_ids)


def handoff(session: object, worker_id: int, item: dict[str, Any], still_valid: Any = None) -> None:
    """Deliver `item` (an assignment leased in this transaction) to the worker's mailbox on commit,
    if `still_valid()` (when given) is still true then."""
    session.info.setdefault("openmesh_handoffs", {}).setdefault(worker_id, []).append(  # type: ignore[attr-defined]
        (item, still_valid))


def redis_ok() -> bool | None:
    """None when Redis is not configured."""
    if _redis is None:
        return None
    return _listener is not None and not _listener.done()


async def start() -> None:
    global _loop, _redis, _listener
    _loop = asyncio.get_running_loop()
    url = get_settings().redis_url
    if url:
        import redis.asyncio as aioredis

        _redis = aioredis.from_url(url)
        _listener = asyncio.create_task(_listen())


async def stop() -> None:
    global _loop, _redis, _listener
    if _listener is not None:
        _listener.cancel()
        with contextlib.suppress(BaseException):
            await _listener
    if _redis is not None:
        with contextlib.suppress(Exception):
            await _redis.aclose()
    _loop, _redis, _listener = None, None, None


# Publishing before the transaction commits would wake a waiter that then finds nothing in the
# database and goes back to sleep: topics raised inside a unit of work are held until it commits.
def defer(session: object, *topics: str, payload: Any = None) -> None:
    session.info.setdefault("openmesh_topics", set()).update(topics)  # type: ignore[attr-defined]
    if payload is not None:
        session.info.setdefault("openmesh_payloads", {}).update(dict.fromkeys(topics, payload))  # type: ignore[attr-defined]


def _install_session_hooks() -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    @event.listens_for(Session, "after_commit")
    def _after_commit(session: Session) -> None:
        # This event also fires when a SAVEPOINT is released (the ledger posts inside one): the outer
        # transaction is still open then, and a waiter woken now would find nothing and sleep on.
        if session.in_nested_transaction():
            return
        topics = session.info.pop("openmesh_topics", None)
        payloads = session.info.pop("openmesh_payloads", None)
        handoffs = session.info.pop("openmesh_handoffs", None)
        if handoffs:
            ready = {wid: [item for item, valid in entries if valid is None or valid()]
                     for wid, entries in handoffs.items()}
            loop = _loop
            if loop is not None and not loop.is_closed():
                for worker_id, items in ready.items():
                    if items:
                        loop.call_soon_threadsafe(_deliver, worker_id, items)
            elif returned is not None:
                returned([i["assignment_id"] for items in ready.values() for i in items])
        if topics:
            publish(*topics, payloads=payloads)

    @event.listens_for(Session, "after_rollback")
    def _after_rollback(session: Session) -> None:
        if session.in_nested_transaction():
            return  # only a SAVEPOINT went back; the unit of work goes on
        session.info.pop("openmesh_topics", None)
        session.info.pop("openmesh_payloads", None)
        session.info.pop("openmesh_handoffs", None)


_install_session_hooks()
