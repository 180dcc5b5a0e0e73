"""WorkersState: the admin's whole pool or an owner's own workers; search, sort, paging, actions."""

from __future__ import annotations

import reflex as rx

from dashboard import api
from dashboard.state import format as fmt
from dashboard.state.auth import AuthState

PAGE_SIZE = 25
SORT_KEYS = (
    "name",
    "status",
    "reputation",
    "heartbeat_age_seconds",
    "verified_count",
    "rejected_count",
    "active_assignments",
    "owner_email",
    "id",
)


def _row(w: dict) -> dict[str, str]:
    return {
        "id": fmt.text(w.get("id")),
        "name": fmt.text(w.get("name")),
        "status": fmt.text(w.get("status")),
        "region": fmt.text(w.get("region")),
        "heartbeat": fmt.age(w.get("heartbeat_age_seconds"))
        if "heartbeat_age_seconds" in w
        else fmt.when(w.get("last_seen_at")),
        "reputation": fmt.number(w.get("reputation")),
        "verified": fmt.text(w.get("verified_count", "—")),
        "rejected": fmt.text(w.get("rejected_count", "—")),
        "active": fmt.text(w.get("active_assignments", "—")),
        "owner": fmt.text(w.get("owner_email") or w.get("owner_user_id")),
    }


def _sort_value(w: dict, key: str):
    v = w.get(key)
    if v is None:
        return (1, "")
    return (0, v if isinstance(v, (int, float)) else str(v).lower())


class WorkersState(AuthState):
    """Workers page."""

    _workers: list[dict] = []
    rows: list[dict[str, str]] = []
    total: int = 0
    filtered: int = 0
    page: int = 1
    pages: int = 1
    search: str = ""
    status_filter: str = "all"
    sort_key: str = "name"
    sort_desc: bool = False
    loaded: bool = False
    error: str = ""
    notice: str = ""
    reason: str = ""
    rejections: list[dict[str, str]] = []
    rejections_for: str = ""

    @rx.event
    def clear_notice(self):
        """A page opened anew shows no message left over from an earlier visit."""
        self.notice = ""

    def _recompute(self) -> None:
        items = self._workers
        q = self.search.strip().lower()
        if q:
            items = [
                w
                for w in items
                if q
                in " ".join(
                    str(w.get(k, "")) for k in ("name", "region", "owner_email", "id", "status")
                ).lower()
            ]
        if self.status_filter != "all":
            items = [w for w in items if w.get("status") == self.status_filter]
        items = sorted(items, key=lambda w: _sort_value(w, self.sort_key), reverse=self.sort_desc)
        self.total = len(self._workers)
        self.filtered = len(items)
        self.pages = max(1, -(-len(items) // PAGE_SIZE))
        self.page = min(max(1, self.page), self.pages)
        start = (self.page - 1) * PAGE_SIZE
        self.rows = [_row(w) for w in items[start : start + PAGE_SIZE]]

    @rx.event
    async def load(self):
        if not self.is_authenticated:
            return None
        try:
            if self.user_role == "admin":
                self._workers = await self.api().admin_workers()
            else:
                self._workers = await self.api().my_workers()
            self.error = ""
        except api.SessionExpired:
            return await self.expire()
        except api.ApiError as exc:
            self._workers = []
            self.error = exc.message
        self._recompute()
        self.loaded = True
        return None

    @rx.event
    def set_search(self, value: str):
        self.search = value
        self.page = 1
        self._recompute()

    @rx.event
    def set_status_filter(self, value: str):
        self.status_filter = value
        self.page = 1
        self._recompute()

    @rx.event
    def sort_by(self, key: str):
        if key not in SORT_KEYS:
            return
        self.sort_desc = not self.sort_desc if self.sort_key == key else False
        self.sort_key = key
        self._recompute()

    @rx.event
    def next_page(self):
        self.page += 1
        self._recompute()

    @rx.event
    def prev_page(self):
        self.page -= 1
        self._recompute()

    @rx.event
    def set_reason(self, value: str):
        self.reason = value

    @rx.event
    async def act(self, worker_id: str, action: str):
        """drain / ban / unban (admin, with a reason) or drain (owner, own worker)."""
        reason = self.reason.strip() or f"{action} from the dashboard"
        self.reason = ""
        if self.user_role == "admin":
            def call(c):
                return c.admin_worker_action(worker_id, action, reason)
        elif action in ("drain", "resume"):
            def call(c):
                return c.drain_my_worker(worker_id) if action == "drain" else c.resume_my_worker(worker_id)
        else:
            self.error = "Only the operator can ban or unban"
            return None
        done = {"drain": "draining", "resume": "resumed", "ban": "banned", "unban": "unbanned"}
        return await self._action(call, f"Worker {worker_id} {done.get(action, action)}") or WorkersState.load

    @rx.event
    async def show_rejections(self, worker_id: str):
        self.rejections_for = worker_id
        try:
            items = await self.api().worker_rejections(worker_id)
            self.rejections = [
                {
                    "job_id": fmt.text(r.get("job_id")),
                    "assignment_id": fmt.text(r.get("assignment_id")),
                    "reason": fmt.text(r.get("reason")),
                    "created_at": fmt.when(r.get("created_at")),
                }
                for r in items
            ]
            self.error = ""
        except api.SessionExpired:
            return await self.expire()
        except api.ApiError as exc:
            self.rejections = []
            self.error = exc.message
        return None
