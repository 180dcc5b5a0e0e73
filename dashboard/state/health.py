"""HealthState: coordinator/gateway health and readiness, plus live charts from their /metrics."""

from __future__ import annotations

import asyncio
import time

import reflex as rx

from dashboard import api, metrics, routes
from dashboard.state import format as fmt
from dashboard.state.auth import AuthState

REFRESH_SECONDS = 5
HISTORY = 40
SERVICES = ("coordinator", "gateway")

# Previous metric snapshots per browser session (not state: they are parsed objects, not display data).
_PREVIOUS: dict[str, dict[str, tuple[float, metrics.Snapshot]]] = {}


def _check_text(check: dict) -> str:
    """One readiness check as the operator reads it; an optional dependency that is off is not "ok"."""
    if check.get("configured") is False:
        return "not configured"
    text = "ok" if check.get("ok") else "failing"
    return text + (f" ({check['backend']})" if check.get("backend") else "")


class HealthState(AuthState):
    """Health/Metrics page (admin); refreshed every few seconds while the page is open."""

    services: list[dict[str, str]] = []
    ready: dict[str, str] = {}
    ready_ok: bool = False
    ready_warnings: str = ""
    history: list[dict] = []
    verification: list[dict] = []
    jobs_by_status: list[dict[str, str]] = []
    workers_by_status: list[dict[str, str]] = []
    metrics_error: str = ""
    loaded: bool = False
    live: bool = False
    last_update: str = ""

    async def _collect(self) -> dict:
        """Probe both services (no state lock held while waiting on the network)."""
        out: dict = {"services": [], "ready": None, "ready_status": 0, "metrics": {}, "errors": []}
        for svc in SERVICES:
            try:
                status, body = await api.probe(svc, "/health")
                state = (body.get("status") if isinstance(body, dict) else None) or (
                    "ok" if status == 200 else ""
                )
                out["services"].append(
                    {
                        "service": svc,
                        "status": "up" if status == 200 else "down",
                        "detail": f"HTTP {status} {state}".strip(),
                    }
                )
            except api.ApiError as exc:
                out["services"].append({"service": svc, "status": "down", "detail": exc.message})
            try:
                status, text = await api.probe(svc, "/metrics")
                if status == 200 and isinstance(text, str):
                    out["metrics"][svc] = metrics.parse(text)
                else:
                    out["errors"].append(f"{svc} /metrics: HTTP {status}")
            except api.ApiError as exc:
                out["errors"].append(f"{svc} /metrics: {exc.message}")
        try:
            out["ready_status"], out["ready"] = await api.probe("coordinator", "/ready")
        except api.ApiError as exc:
            out["errors"].append(f"coordinator /ready: {exc.message}")
        return out

    def _apply(self, data: dict, session_key: str) -> None:
        self.services = data["services"]
        ready = data["ready"] if isinstance(data["ready"], dict) else {}
        self.ready_ok = data["ready_status"] == 200
        self.ready_warnings = "; ".join(str(w) for w in ready.get("warnings", []) or [])
        checks = ready.get("checks", ready)
        self.ready = {
            str(k): _check_text(v) if isinstance(v, dict) else fmt.text(v)
            for k, v in checks.items()
            if k not in ("service", "status", "ready", "warnings")
        }
        now = time.time()
        prev = _PREVIOUS.setdefault(session_key, {})
        point: dict = {"t": time.strftime("%H:%M:%S")}
        have_rates = False
        for svc, snap in data["metrics"].items():
            if svc in prev:
                r = metrics.rates(prev[svc][1], snap, now - prev[svc][0])
                for k, v in r.items():
                    point[f"{svc}_{k}"] = round(v, 3) if v is not None else None
                have_rates = True
            prev[svc] = (now, snap)
        if have_rates:
            self.history = [*self.history, point][-HISTORY:]
        coord = data["metrics"].get("coordinator")
        gw = data["metrics"].get("gateway")
        outcomes: dict[str, float] = {}
        for snap in (coord, gw):
            if snap:
                for k, v in snap.verification.items():
                    outcomes[k] = max(outcomes.get(k, 0.0), v)
        self.verification = [{"outcome": k, "count": v} for k, v in sorted(outcomes.items())]
        self.jobs_by_status = [
            {"status": k, "count": f"{v:.0f}"} for k, v in sorted((coord.jobs if coord else {}).items())
        ]
        self.workers_by_status = [
            {"status": k, "count": f"{v:.0f}"} for k, v in sorted((coord.workers if coord else {}).items())
        ]
        self.metrics_error = "; ".join(data["errors"])
        self.last_update = time.strftime("%H:%M:%S")
        self.loaded = True

    @rx.event
    async def load(self):
        if not self.is_authenticated:
            return None
        data = await self._collect()
        self._apply(data, self.router.session.client_token)
        if not self.live:
            self.live = True
            return HealthState.poll
        return None

    @rx.event(background=True)
    async def poll(self):
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            async with self:
                if not self.is_authenticated or self.router.url.path != routes.HEALTH or not self.live:
                    self.live = False
                    return
            data = await self._collect()
            async with self:
                self._apply(data, self.router.session.client_token)

    @rx.event
    def stop(self):
        self.live = False
