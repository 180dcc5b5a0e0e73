"""FinanceState: admin summary/charts/leaderboard/emission/credit; a client's or owner's balance, ledger."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import reflex as rx

from dashboard import api
from dashboard.state import format as fmt
from dashboard.state.auth import AuthState

LEDGER_PAGE = 25
SERIES_KEYS = ("job_charge", "pool_fee", "worker_reward", "daily_emission")


def _dec(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, TypeError):
        return Decimal(0)


def _series_rows(data) -> list[dict]:
    """Rows of a timeseries answer, whatever list key it uses; numbers as floats for the chart."""
    items = (
        data
        if isinstance(data, list)
        else next(
            (data[k] for k in ("items", "days", "series", "points") if isinstance(data, dict) and k in data),
            [],
        )
    )
    rows = []
    for item in items:
        row: dict = {"date": str(item.get("date", item.get("day", "")))[:10]}
        for key in SERIES_KEYS:
            val = item.get(key)
            if val is None and isinstance(item.get("totals_by_kind"), dict):
                val = item["totals_by_kind"].get(key)
            row[key] = float(abs(_dec(val))) if val is not None else 0.0
        rows.append(row)
    return rows


class FinanceState(AuthState):
    """Finance page; what loads depends on the role."""

    loaded: bool = False
    error: str = ""
    notice: str = ""
    # admin
    cards: dict[str, str] = {}
    totals: list[dict[str, str]] = []
    invariant_ok: bool = True
    invariant_problems: list[str] = []
    series: list[dict] = []
    series_available: bool = False
    leaderboard: list[dict[str, str]] = []
    emission: dict[str, str] = {}
    emission_workers: list[dict[str, str]] = []
    users: list[dict[str, str]] = []
    credit_user_id: str = ""
    section_errors: dict[str, str] = {}
    # client / worker owner
    balance: dict[str, str] = {}
    ledger: list[dict[str, str]] = []
    ledger_total: int = 0
    ledger_page: int = 1
    ledger_kind: str = "all"
    per_day: list[dict] = []
    per_key: list[dict[str, str]] = []
    per_worker: list[dict[str, str]] = []

    @rx.event
    def clear_notice(self):
        """A page opened anew shows no message left over from an earlier visit."""
        self.notice = ""

    @rx.var
    def ledger_pages(self) -> int:
        return max(1, -(-self.ledger_total // LEDGER_PAGE))

    @rx.event
    async def load(self):
        if not self.is_authenticated:
            return None
        try:
            if self.user_role == "admin":
                await self._load_admin()
            else:
                await self._load_personal()
        except api.SessionExpired:
            return await self.expire()
        self.loaded = True
        return None

    async def _section(self, name: str, coro):
        try:
            result = await coro
            self.section_errors.pop(name, None)
            return result
        except api.SessionExpired:
            raise
        except api.ApiError as exc:
            self.section_errors[name] = exc.message
            return None

    async def _load_admin(self) -> None:
        c = self.api()
        self.section_errors = {}
        summary = await self._section("summary", c.finance_summary())
        if summary is not None:
            totals = summary.get("totals_by_kind") or {}
            cur = summary.get("currency", "TOK")
            self.cards = {
                "currency": cur,
                "volume": fmt.tokens(totals.get("job_charge")),
                "pool_balance": fmt.tokens(summary.get("pool_balance_tokens")),
                "fees": fmt.tokens(totals.get("pool_fee")),
                "rewards": fmt.tokens(totals.get("worker_reward")),
                "emission": fmt.tokens(totals.get("daily_emission", totals.get("emission"))),
                "reservations": fmt.tokens(summary.get("outstanding_reservations")),
            }
            self.totals = [{"kind": str(k), "amount": fmt.tokens(v)} for k, v in sorted(totals.items())]
            inv = summary.get("invariant") or {}
            self.invariant_ok = bool(inv.get("ok", False))
            self.invariant_problems = [str(p) for p in inv.get("problems", [])]
        else:
            self.cards = {}
            self.totals = []
        try:
            self.series = _series_rows(await c.finance_timeseries(14))
            self.series_available = True
        except api.SessionExpired:
            raise
        except api.ApiError:
            # Optional endpoint: without it the chart is hidden, never faked.
            self.series = []
            self.series_available = False
        board = await self._section("leaderboard", c.leaderboard())
        self.leaderboard = [
            {
                "worker_id": fmt.text(w.get("worker_id")),
                "name": fmt.text(w.get("name")),
                "status": fmt.text(w.get("status")),
                "reputation": fmt.number(w.get("reputation")),
                "verified": fmt.text(w.get("verified_count")),
                "rejected": fmt.text(w.get("rejected_count")),
                "earnings": fmt.tokens(w.get("earnings")),
            }
            for w in (board or [])
        ]
        em = await self._section("emission", c.emission_status())
        if em is not None:
            self.emission = {
                "date": fmt.text(em.get("date")),
                "cap": fmt.tokens(em.get("cap_tokens")),
                "emitted": fmt.tokens(em.get("emitted_today_tokens")),
                "remaining": fmt.tokens(em.get("remaining_tokens")),
                "source": fmt.text(em.get("per_worker_source")),
            }
            self.emission_workers = [
                {
                    "worker_id": fmt.text(p.get("worker_id")),
                    "name": fmt.text(p.get("name", p.get("worker_name"))),
                    "uptime": fmt.number(p.get("uptime_ratio", p.get("uptime"))),
                    "reputation": fmt.number(p.get("reputation")),
                    "amount": fmt.tokens(p.get("amount", p.get("tokens", p.get("emitted")))),
                }
                for p in em.get("per_worker", [])
            ]
        else:
            self.emission = {}
            self.emission_workers = []
        try:
            users = await c.admin_users("client")
            self.users = [{"id": fmt.text(u.get("id")), "email": fmt.text(u.get("email"))} for u in users]
        except api.SessionExpired:
            raise
        except api.ApiError:
            self.users = []  # optional endpoint: fall back to typing the user id

    async def _load_personal(self) -> None:
        c = self.api()
        self.section_errors = {}
        bal = await self._section("balance", c.balance())
        self.balance = (
            {
                k: fmt.tokens(bal.get(k)) if k != "currency" else fmt.text(bal.get(k))
                for k in ("currency", "balance", "reserved", "available")
            }
            if bal
            else {}
        )
        await self._load_ledger()
        # Aggregates are computed by the coordinator from the whole ledger, never estimated here.
        if self.user_role == "client":
            data = await self._section("spend", c.spend(days=30)) or {}
            self.per_day = [{"date": fmt.text(d.get("date")), "spend": float(_dec(d.get("amount")))}
                            for d in data.get("per_day", [])]
            self.per_key = [
                {"name": fmt.text(k.get("name")) or "—", "prefix": fmt.text(k.get("prefix")),
                 "jobs": fmt.text(k.get("jobs")), "amount": fmt.tokens(k.get("amount"))}
                for k in data.get("per_key", [])
            ]
            self.per_worker = []
        else:
            data = await self._section("earnings", c.earnings()) or {}
            self.per_worker = [
                {
                    "worker_id": fmt.text(w.get("worker_id")) or "—",
                    "name": fmt.text(w.get("name")) or "—",
                    "jobs": fmt.text(w.get("rewarded_jobs")),
                    "rewards": fmt.tokens(w.get("rewards")),
                    "emission": fmt.tokens(w.get("emission")),
                    "total": fmt.tokens(w.get("total")),
                }
                for w in data.get("per_worker", [])
            ]
            self.per_day = []
            self.per_key = []

    async def _load_ledger(self) -> None:
        kind = "" if self.ledger_kind == "all" else self.ledger_kind
        data = await self._section(
            "ledger",
            self.api().ledger(limit=LEDGER_PAGE, offset=(self.ledger_page - 1) * LEDGER_PAGE, kind=kind),
        )
        data = data or {}
        self.ledger_total = int(data.get("total", 0) or 0)
        self.ledger = [
            {
                "id": fmt.text(i.get("id")),
                "kind": fmt.text(i.get("kind")),
                "amount": fmt.tokens(i.get("amount")),
                "job_id": fmt.text(i.get("job_id")),
                "worker_id": fmt.text(i.get("worker_id")),
                "memo": fmt.text(i.get("memo")),
                "created_at": fmt.when(i.get("created_at")),
            }
            for i in data.get("items", [])
        ]

    async def _reload_ledger(self):
        try:
            await self._load_ledger()
        except api.SessionExpired:
            return await self.expire()
        return None

    @rx.event
    async def set_ledger_kind(self, value: str):
        self.ledger_kind = value
        self.ledger_page = 1
        return await self._reload_ledger()

    @rx.event
    async def ledger_next(self):
        self.ledger_page = min(self.ledger_page + 1, self.ledger_pages)
        return await self._reload_ledger()

    @rx.event
    async def ledger_prev(self):
        self.ledger_page = max(1, self.ledger_page - 1)
        return await self._reload_ledger()

    @rx.event
    async def run_emission(self):
        def describe(result) -> str:
            if not isinstance(result, dict):
                return "Emission run: done"
            return "Emission run: " + (result.get("message") or (
                f"{result.get('date', '')}: {fmt.tokens(result.get('emitted_tokens'))} emitted"))

        return await self._action(lambda c: c.emission_run_now(), describe) or FinanceState.load

    @rx.event
    def set_credit_user_id(self, value: str):
        self.credit_user_id = value

    @rx.event
    async def credit(self, form: dict):
        user_id = str(form.get("user_id") or self.credit_user_id).strip()
        amount = str(form.get("amount", "")).strip()
        memo = str(form.get("memo", "")).strip() or "credit from the dashboard"
        if not user_id.isdigit() or _dec(amount) <= 0:
            self.error = "Give a user id and a positive amount"
            return None
        return await self._action(lambda c: c.credit_user(user_id, amount, memo),
                                  f"Credited {amount} to user {user_id}") or FinanceState.load
