"""Daily emission: tokens minted to worker owners for uptime and reputation, at most the daily cap.

    run_emission(session_or_factory, *, day=None, trigger="manual", now=None) -> dict
        Per non-banned worker: EMISSION_BASE_TOKENS × uptime ratio (distinct WorkerUptime minutes in the
        24 h before `now`, after the previous day's run, / 1440) × reputation (clamped to [0, 1]), paid to its owner as
        `daily_emission` from issuance, idempotency key `emission:{day}:{worker_id}`. When the total
        exceeds EMISSION_CAP_TOKENS every amount is scaled down proportionally (rounded down), so the
        total never exceeds the cap. The EmissionRun row (unique `day`) is inserted first, in the same
        transaction as the payouts: a second run that day — from this process or another — finds it (or
        collides on it after the first commits) and pays nothing (`ran: False`).
        Given a Session it does not commit (the caller does); given a session factory it opens, commits
        and closes its own session.
    scheduled_emission() -> dict
        What the scheduler calls at EMISSION_TIME (UTC): run_emission on its own session, trigger
        "schedule". Safe to call from several processes: the unique day row is the lock.
    emission_status(session, *, now=None) -> dict
        Today's cap, emitted, remaining, the last run, the next scheduled run and the per-worker
        breakdown (today's run, or a preview of what a run would pay now: `per_worker_source`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.coordinator.ledger import service as ledger
from backend.core.config import Settings, get_settings
from backend.core.money import fmt, quantize
from backend.core.security import now_utc
from backend.models import EmissionRun, EntryKind, Worker, WorkerStatus, WorkerUptime

log = logging.getLogger("openmesh.emission")

MINUTES_PER_DAY = 1440
ZERO = Decimal(0)


def _reputation(value: float | None) -> Decimal:
    rep = Decimal(repr(float(value or 0.0)))
    return min(Decimal(1), max(ZERO, rep))


def compute_emission(session: Session, *, now: datetime, day: date | None = None,
                     settings: Settings | None = None) -> list[dict[str, Any]]:
    """What each non-banned worker would be paid now for `day` (default: now's UTC day):
    [{worker_id, name, owner_user_id, uptime_minutes, uptime_ratio, reputation, amount}] (amount a
    Decimal, already capped).

    Uptime counts the minutes of the last 24 h that no earlier day's run has paid for: a run-now
    shortly before midnight and the next day's run never pay the same minutes twice.
    """
    s = settings or get_settings()
    base, cap = Decimal(s.emission_base_tokens), Decimal(s.emission_cap_tokens)
    since = now - timedelta(hours=24)
    previous = session.execute(select(func.max(EmissionRun.started_at))
                               .where(EmissionRun.day < (day or now.date()))).scalar_one_or_none()
    if previous is not None:
        since = max(since, previous)
    minutes = dict(session.execute(
        select(WorkerUptime.worker_id, func.count(func.distinct(WorkerUptime.minute)))
        .where(WorkerUptime.minute > since, WorkerUptime.minute <= now)
        .group_by(WorkerUptime.worker_id)).all())
    workers = session.execute(
        select(Worker).where(Worker.status != WorkerStatus.banned).order_by(Worker.id)).scalars().all()
    rows: list[dict[str, Any]] = []
    for w in workers:
        up = min(MINUTES_PER_DAY, int(minutes.get(w.id, 0)))
        rep = _reputation(w.reputation)
        raw = base * up * rep / MINUTES_PER_DAY
        rows.append({"worker_id": w.id, "name": w.name, "owner_user_id": w.owner_user_id,
                     "uptime_minutes": up,
                     "uptime_ratio": round(up / MINUTES_PER_DAY, 6), "reputation": float(rep), "raw": raw})
    total_raw = sum((r["raw"] for r in rows), ZERO)
    for r in rows:
        amount = r.pop("raw")
        if total_raw > cap:
            amount = amount * cap / total_raw
        r["amount"] = max(ZERO, quantize(amount))
    # Decimal division rounds at 28 digits: make sure that never lifts the total above the cap.
    excess = sum((r["amount"] for r in rows), ZERO) - cap
    while excess > 0:
        top = max(rows, key=lambda r: r["amount"])
        cut = min(excess, top["amount"])
        top["amount"] -= cut
        excess -= cut
    return rows


def _public(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-safe rows (amounts as decimal strings)."""
    return [{**r, "amount": fmt(r["amount"]) if isinstance(r["amount"], Decimal) else r["amount"]}
            for r in rows]


def _run_dict(run: EmissionRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"date": run.day.isoformat(), "trigger": run.trigger, "started_at": run.started_at,
            "finished_at": run.finished_at, "cap_tokens": fmt(run.cap), "emitted_tokens": fmt(run.emitted),
            "workers_paid": sum(1 for r in (run.details or {}).get("per_worker", [])
                                if Decimal(r["amount"]) > 0)}


def _today(now: datetime) -> date:
    return now.date()


def _run(session: Session, *, day: date, trigger: str, now: datetime) -> dict[str, Any]:
    s = get_settings()

    def _already(existing: EmissionRun) -> dict[str, Any]:
        return {"date": day.isoformat(), "ran": False, "emitted_tokens": "0", "per_worker": [],
                "already_emitted_tokens": fmt(existing.emitted),
                "message": (f"Emission for {day.isoformat()} already ran ({existing.trigger}, "
                            f"{fmt(existing.emitted)} TOK); nothing more was paid")}

    existing = session.execute(select(EmissionRun).where(EmissionRun.day == day)).scalar_one_or_none()
    if existing is not None:
        return _already(existing)
    run = EmissionRun(day=day, cap=Decimal(s.emission_cap_tokens), trigger=trigger, started_at=now)
    try:
        # The unique day is the lock: another process's run that day makes this insert fail (on
        # PostgreSQL it waits for that run to commit first); the savepoint keeps our session usable.
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        existing = session.execute(select(EmissionRun).where(EmissionRun.day == day)).scalar_one_or_none()
        if existing is None:
            raise
        return _already(existing)

    rows = compute_emission(session, now=now, day=day, settings=s)
    # Lock every account this run touches in id order first: no deadlock with concurrent settlements.
    ledger.lock_user_accounts(session, [r["owner_user_id"] for r in rows if r["amount"] > 0])
    total = ZERO
    for r in rows:
        if r["amount"] <= 0:
            continue
        ledger.credit(session, user_id=r["owner_user_id"], amount=r["amount"], kind=EntryKind.daily_emission,
                      idempotency_key=f"emission:{day.isoformat()}:{r['worker_id']}",
                      worker_id=r["worker_id"],
                      memo=f"daily emission {day.isoformat()} for worker {r['name']}")
        total += r["amount"]
    public = _public(rows)
    run.emitted = total
    run.finished_at = now_utc()
    run.details = {"per_worker": public, "base_tokens": fmt(Decimal(s.emission_base_tokens))}
    session.add(run)
    session.flush()
    paid = sum(1 for r in rows if r["amount"] > 0)
    log.info("emission %s (%s): %s TOK to %d worker(s)", day.isoformat(), trigger, fmt(total), paid)
    return {"date": day.isoformat(), "ran": True, "emitted_tokens": fmt(total), "per_worker": public,
            "message": f"Emitted {fmt(total)} TOK to {paid} worker(s) for {day.isoformat()}"}


def run_emission(session_or_factory: Session | Callable[[], Session], *, day: date | None = None,
                 trigger: str = "manual", now: datetime | None = None) -> dict[str, Any]:
    """Pay the day's emission once (see the module docstring)."""
    now = now or now_utc()
    day = day or _today(now)
    if isinstance(session_or_factory, Session):
        return _run(session_or_factory, day=day, trigger=trigger, now=now)
    with session_or_factory() as session:
        try:
            result = _run(session, day=day, trigger=trigger, now=now)
            session.commit()
        except IntegrityError:
            # A concurrent run committed between our check and our insert in a way the savepoint
            # could not absorb: that run paid; this one pays nothing.
            session.rollback()
            existing = session.execute(select(EmissionRun).where(EmissionRun.day == day)).scalar_one_or_none()
            if existing is None:
                raise
            result = {"date": day.isoformat(), "ran": False, "emitted_tokens": "0", "per_worker": [],
                      "already_emitted_tokens": fmt(existing.emitted),
                      "message": f"Emission for {day.isoformat()} already ran; nothing more was paid"}
        return result


def scheduled_emission() -> dict[str, Any]:
    """The scheduler's entry point: its own session, committed; a no-op if the day already ran."""
    from backend.core.db import get_engine

    result = run_emission(lambda: Session(get_engine(), expire_on_commit=False), trigger="schedule")
    log.info("scheduled emission: %s", result["message"])
    return result


def next_run_at(now: datetime, settings: Settings | None = None) -> datetime:
    """The next EMISSION_TIME (UTC, naive) strictly after `now`."""
    s = settings or get_settings()
    hh, mm = (int(x) for x in s.emission_time.split(":"))
    candidate = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


def emission_status(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    s = get_settings()
    now = now or now_utc()
    today = _today(now)
    cap = Decimal(s.emission_cap_tokens)
    run_today = session.execute(select(EmissionRun).where(EmissionRun.day == today)).scalar_one_or_none()
    last = session.execute(
        select(EmissionRun).order_by(EmissionRun.day.desc(), EmissionRun.id.desc()).limit(1)
    ).scalar_one_or_none()
    if run_today is not None:
        emitted, run_cap = run_today.emitted, run_today.cap
        per_worker = (run_today.details or {}).get("per_worker", [])
        source = "run"
    else:
        emitted, run_cap = ZERO, cap
        per_worker = _public(compute_emission(session, now=now, day=today, settings=s))
        source = "preview"
    return {"date": today.isoformat(), "cap_tokens": fmt(run_cap), "emitted_today_tokens": fmt(emitted),
            "remaining_tokens": fmt(max(ZERO, run_cap - emitted)),
            "base_tokens": fmt(Decimal(s.emission_base_tokens)),
            "emission_time_utc": s.emission_time, "ran_today": run_today is not None,
            "last_run": _run_dict(last), "next_run_at": next_run_at(now, s),
            "per_worker_source": source, "per_worker": per_worker}


__all__ = ["compute_emission", "emission_status", "next_run_at", "run_emission", "scheduled_emission"]
