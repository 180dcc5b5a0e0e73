"""JobsState (queue/history with server-side paging and filters) and JobDetailState (one job)."""

from __future__ import annotations

import asyncio
import json
import time

import reflex as rx

from dashboard import api, routes
from dashboard.state import format as fmt
from dashboard.state.auth import AuthState

PAGE_SIZE = 50
REFRESH_SECONDS = 3


def _job_row(j: dict) -> dict[str, str]:
    return {
        "id": fmt.text(j.get("id")),
        "job_type": fmt.text(j.get("job_type")),
        "status": fmt.text(j.get("status")),
        "client": fmt.text(j.get("client_email") or j.get("client_user_id")) or ("demo" if j.get("is_demo") else "—"),
        "created_at": fmt.when(j.get("created_at")),
        "finished_at": fmt.when(j.get("finished_at")),
        "price": fmt.tokens(j.get("price")),
        "audit": "audit" if j.get("is_audit") else "",
    }


class JobsState(AuthState):
    """Jobs page (admin)."""

    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    status: str = "all"
    job_type: str = "all"
    client_id: str = ""
    worker_id: str = ""
    since: str = ""
    until: str = ""
    demo_count: str = "10"
    loaded: bool = False
    live: bool = False
    last_update: str = ""
    error: str = ""
    notice: str = ""

    @rx.var
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    @rx.event
    def clear_notice(self):
        """A page opened anew shows no message left over from an earlier visit."""
        self.notice = ""

    def _filters(self) -> dict:
        return {
            "status": "" if self.status == "all" else self.status,
            "job_type": "" if self.job_type == "all" else self.job_type,
            "client_id": self.client_id.strip(),
            "worker_id": self.worker_id.strip(),
            "since": self.since,
            "until": self.until,
            "limit": PAGE_SIZE,
            "offset": (self.page - 1) * PAGE_SIZE,
        }

    def _apply(self, data: dict) -> None:
        self.rows = [_job_row(j) for j in data.get("items", [])]
        self.total = int(data.get("total", len(self.rows)))
        self.error = ""
        self.last_update = time.strftime("%H:%M:%S")
        self.loaded = True

    @rx.event
    async def load(self):
        if not self.is_authenticated:
            return None
        try:
            self._apply(await self.api().admin_jobs(**self._filters()))
        except api.SessionExpired:
            return await self.expire()
        except api.ApiError as exc:
            self.rows = []
            self.total = 0
            self.error = exc.message
            self.loaded = True
        if not self.live:
            self.live = True
            return JobsState.poll
        return None

    @rx.event(background=True)
    async def poll(self):
        """Re-read the current page every few seconds while it is open, so new jobs appear by themselves."""
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            async with self:
                if not self.is_authenticated or self.router.url.path != routes.JOBS:
                    self.live = False
                    return
                client, filters = self.api(), self._filters()
            try:
                data = await client.admin_jobs(**filters)
            except api.ApiError:
                continue  # the next manual action shows the error; the loop keeps trying quietly
            async with self:
                self._apply(data)

    @rx.event
    def apply_filters(self, form: dict):
        self.status = form.get("status") or "all"
        self.job_type = form.get("job_type") or "all"
        self.client_id = form.get("client_id", "")
        self.worker_id = form.get("worker_id", "")
        self.since = form.get("since", "")
        self.until = form.get("until", "")
        self.page = 1
        return JobsState.load

    @rx.event
    def set_status(self, value: str):
        self.status = value

    @rx.event
    def set_job_type(self, value: str):
        self.job_type = value

    @rx.event
    def set_demo_count(self, value: str):
        self.demo_count = value

    @rx.event
    def next_page(self):
        self.page = min(self.page + 1, self.pages)
        return JobsState.load

    @rx.event
    def prev_page(self):
        self.page = max(1, self.page - 1)
        return JobsState.load

    @rx.event
    async def enqueue_demo(self):
        try:
            count = max(1, min(int(self.demo_count), 100))
        except ValueError:
            self.error = "Count must be a whole number"
            return None
        return await self._action(lambda c: c.enqueue_demo(count),
                                  lambda data: f"Enqueued {len(data.get('job_ids', []))} demo jobs") or JobsState.load


class JobDetailState(AuthState):
    """Job detail page (admin): assignments, similarities, verification, cancel/requeue."""

    job: dict[str, str] = {}
    assignments: list[dict[str, str]] = []
    verification: str = ""
    output: str = ""
    loaded: bool = False
    error: str = ""
    notice: str = ""
    reason: str = ""

    @rx.var
    def detail_id(self) -> str:
        """The job id from the URL (/jobs/<id>)."""
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    @rx.event
    async def load(self):
        if not self.is_authenticated:
            return None
        try:
            data = await self.api().admin_job(self.detail_id)
            self.job = {
                **_job_row(data),
                "request_id": fmt.text(data.get("request_id")),
                "payload": json.dumps(data.get("payload"), ensure_ascii=False)[:2000]
                if data.get("payload") is not None
                else "",
            }
            self.assignments = [
                {
                    "id": fmt.text(a.get("id")),
                    "worker_id": fmt.text(a.get("worker_id")),
                    "status": fmt.text(a.get("status")),
                    "similarity": fmt.number(a.get("similarity"), 7),
                    "reject_reason": fmt.text(a.get("reject_reason")),
                    "submitted_at": fmt.when(a.get("submitted_at")),
                    "output_hash": fmt.text(a.get("output_hash")),
                }
                for a in data.get("assignments", [])
            ]
            ver = data.get("verification")
            self.verification = json.dumps(ver, indent=2, ensure_ascii=False) if ver else ""
            out = data.get("output")
            self.output = json.dumps(out, ensure_ascii=False)[:1500] if out else ""
            self.error = ""
        except api.SessionExpired:
            return await self.expire()
        except api.ApiError as exc:
            self.job = {}
            self.assignments = []
            self.error = exc.message
        self.loaded = True
        return None

    @rx.event
    def clear(self):
        self.loaded = False
        self.notice = ""
        self.error = ""

    @rx.event
    def set_reason(self, value: str):
        self.reason = value

    @rx.event
    async def act(self, action: str):
        reason = self.reason.strip() or f"{action} from the dashboard"
        self.reason = ""
        job_id = self.detail_id
        return await self._action(lambda c: c.admin_job_action(job_id, action, reason),
                                  f"Job {job_id}: {action} done") or JobDetailState.load
