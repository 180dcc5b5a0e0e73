"""APScheduler: the liveness sweep every few seconds and the daily emission.

Both jobs are safe when several coordinator processes run them: the sweep only makes conditional
state transitions, and emission is keyed by its day (a unique row), so a second run pays nothing.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from backend.core.config import get_settings

log = logging.getLogger("openmesh.scheduler")


def _sweep() -> None:
    from backend.coordinator.jobs import sweep

    try:
        sweep.run_once()
    except Exception:  # noqa: BLE001 - one bad sweep must not stop the next
        log.exception("sweep failed")


def _emission() -> None:
    from backend.coordinator.emission.service import scheduled_emission

    try:
        scheduled_emission()
    except Exception:  # noqa: BLE001
        log.exception("scheduled emission failed")


def start() -> BackgroundScheduler:
    settings = get_settings()
    hour, minute = (int(x) for x in settings.emission_time.split(":"))
    sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    sched.add_job(_sweep, "interval", seconds=settings.sweep_interval_seconds, id="sweep")
    sched.add_job(_emission, CronTrigger(hour=hour, minute=minute, timezone="UTC"), id="emission")
    sched.start()
    return sched
