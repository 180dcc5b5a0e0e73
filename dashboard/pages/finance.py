"""Finance page: admin (summary, charts, leaderboard, emission, credit); client/owner (balance, ledger)."""

from __future__ import annotations

import reflex as rx

from dashboard import routes
from dashboard.components.common import (
    confirm_dialog,
    empty_state,
    error_callout,
    loading,
    notice_callout,
    pagination,
    stat_card,
    status_badge,
    tr,
)
from dashboard.layout import page
from dashboard.state.auth import AuthState
from dashboard.state.finance import SERIES_KEYS, FinanceState
from dashboard.styles import table_style

F = FinanceState
LEDGER_KINDS = ["all", "admin_credit", "job_charge", "pool_fee", "worker_reward", "daily_emission", "refund"]
SERIES_COLORS = {
    "job_charge": "#0d9488",
    "pool_fee": "#d97706",
    "worker_reward": "#2563eb",
    "daily_emission": "#9333ea",
}


def _table(headers: list[str], rows: rx.Var, cells, table_id: str = "") -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(tr(h)) for h in headers])),
        rx.table.body(rx.foreach(rows, lambda r: rx.table.row(*[rx.table.cell(c(r)) for c in cells]))),
        style=table_style,
        variant="surface",
        id=table_id or None,
    )


def _section_error(name: str) -> rx.Component:
    return rx.cond(F.section_errors.contains(name), error_callout(F.section_errors[name]))


def _admin() -> rx.Component:
    return rx.vstack(
        _section_error("summary"),
        rx.cond(
            F.cards.contains("volume"),
            rx.flex(
                stat_card(tr("card_volume"), F.cards["volume"], F.cards["currency"], "card-volume"),
                stat_card(tr("card_pool_balance"), F.cards["pool_balance"], F.cards["currency"], "card-pool"),
                stat_card(tr("card_fees"), F.cards["fees"], F.cards["currency"]),
                stat_card(tr("card_rewards"), F.cards["rewards"], F.cards["currency"]),
                stat_card(tr("card_emission"), F.cards["emission"], F.cards["currency"]),
                stat_card(tr("card_reservations"), F.cards["reservations"], F.cards["currency"]),
                rx.card(
                    rx.vstack(
                        rx.text(tr("card_invariant"), size="2", color_scheme="gray"),
                        rx.cond(
                            F.invariant_ok,
                            rx.badge(tr("invariant_ok"), color_scheme="green", size="3"),
                            rx.badge(tr("invariant_broken"), color_scheme="red", size="3"),
                        ),
                        rx.foreach(F.invariant_problems, lambda p: rx.text(p, size="1", color_scheme="red")),
                        spacing="1",
                    ),
                    min_width="12em",
                    flex="1",
                    id="card-invariant",
                ),
                wrap="wrap",
                spacing="3",
                width="100%",
            ),
        ),
        rx.cond(
            F.series_available & (F.series.length() > 0),
            rx.card(
                rx.vstack(
                    rx.heading(tr("chart_over_time"), size="3"),
                    rx.recharts.line_chart(
                        *[
                            rx.recharts.line(data_key=k, stroke=SERIES_COLORS[k], name=k, dot=False)
                            for k in SERIES_KEYS
                        ],
                        rx.recharts.x_axis(data_key="date"),
                        rx.recharts.y_axis(),
                        rx.recharts.legend(),
                        rx.recharts.graphing_tooltip(),
                        data=F.series,
                        width="100%",
                        height=260,
                    ),
                    width="100%",
                ),
                width="100%",
            ),
        ),
        rx.cond(
            F.totals.length() > 0,
            rx.vstack(
                rx.heading(tr("totals_by_kind"), size="4"),
                _table(["col_kind", "col_amount"], F.totals, [lambda r: r["kind"], lambda r: r["amount"]]),
                width="100%",
            ),
        ),
        rx.heading(tr("leaderboard"), size="4"),
        _section_error("leaderboard"),
        rx.cond(
            F.leaderboard.length() > 0,
            _table(
                [
                    "col_worker",
                    "col_name",
                    "col_status",
                    "col_reputation",
                    "col_verified",
                    "col_rejected",
                    "col_earnings",
                ],
                F.leaderboard,
                [
                    lambda r: r["worker_id"],
                    lambda r: r["name"],
                    lambda r: status_badge(r["status"]),
                    lambda r: r["reputation"],
                    lambda r: r["verified"],
                    lambda r: r["rejected"],
                    lambda r: r["earnings"],
                ],
                "leaderboard-table",
            ),
            empty_state(tr("no_workers")),
        ),
        rx.hstack(
            rx.heading(tr("emission"), size="4"),
            rx.spacer(),
            confirm_dialog(
                rx.button(rx.icon("coins", size=14), tr("run_emission"), size="2", id="run-emission"),
                tr("run_emission"),
                tr("confirm_emission"),
                F.run_emission,
                confirm_label=tr("run_emission"),
                color="teal",
            ),
            width="100%",
        ),
        _section_error("emission"),
        rx.cond(
            F.emission.contains("date"),
            rx.flex(
                stat_card(tr("emission_date"), F.emission["date"]),
                stat_card(tr("emission_cap"), F.emission["cap"]),
                stat_card(tr("emission_emitted"), F.emission["emitted"], "", "emission-emitted"),
                stat_card(tr("emission_remaining"), F.emission["remaining"]),
                wrap="wrap",
                spacing="3",
                width="100%",
            ),
        ),
        rx.cond(
            F.emission_workers.length() > 0,
            _table(
                ["col_worker", "col_name", "col_uptime", "col_reputation", "col_amount"],
                F.emission_workers,
                [
                    lambda r: r["worker_id"],
                    lambda r: r["name"],
                    lambda r: r["uptime"],
                    lambda r: r["reputation"],
                    lambda r: r["amount"],
                ],
            ),
        ),
        rx.heading(tr("credit_client"), size="4"),
        rx.form(
            rx.hstack(
                rx.cond(
                    F.users.length() > 0,
                    rx.select.root(
                        rx.select.trigger(placeholder=tr("choose_client")),
                        rx.select.content(
                            rx.foreach(F.users, lambda u: rx.select.item(u["email"], value=u["id"]))
                        ),
                        on_change=F.set_credit_user_id,
                    ),
                    rx.input(placeholder=tr("user_id"), name="user_id", width="8em"),
                ),
                rx.input(placeholder=tr("col_amount"), name="amount", width="8em"),
                rx.input(placeholder=tr("memo"), name="memo", width="16em"),
                rx.button(tr("credit"), type="submit"),
                spacing="2",
            ),
            on_submit=F.credit,
            reset_on_submit=True,
        ),
        width="100%",
        spacing="4",
    )


def _ledger() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading(tr("ledger"), size="4"),
            rx.spacer(),
            rx.select(LEDGER_KINDS, value=F.ledger_kind, on_change=F.set_ledger_kind, size="2"),
            width="100%",
        ),
        _section_error("ledger"),
        rx.cond(
            F.ledger.length() > 0,
            _table(
                ["col_id", "col_kind", "col_amount", "col_job", "col_worker", "memo", "col_when"],
                F.ledger,
                [
                    lambda r: r["id"],
                    lambda r: r["kind"],
                    lambda r: r["amount"],
                    lambda r: r["job_id"],
                    lambda r: r["worker_id"],
                    lambda r: r["memo"],
                    lambda r: r["created_at"],
                ],
                "ledger-table",
            ),
            empty_state(tr("no_ledger")),
        ),
        pagination(F.ledger_page, F.ledger_pages, F.ledger_total, F.ledger_prev, F.ledger_next),
        width="100%",
        spacing="3",
    )


def _personal() -> rx.Component:
    return rx.vstack(
        _section_error("balance"),
        rx.cond(
            F.balance.contains("balance"),
            rx.flex(
                stat_card(tr("balance"), F.balance["balance"], F.balance["currency"], "balance-total"),
                stat_card(tr("reserved"), F.balance["reserved"], F.balance["currency"]),
                stat_card(
                    tr("available"), F.balance["available"], F.balance["currency"], "balance-available"
                ),
                wrap="wrap",
                spacing="3",
                width="100%",
            ),
        ),
        rx.cond(
            AuthState.user_role == "client",
            rx.card(
                rx.vstack(
                    rx.heading(tr("spend_per_day"), size="3"),
                    rx.cond(
                        F.per_day.length() > 0,
                        rx.recharts.bar_chart(
                            rx.recharts.bar(data_key="spend", fill="#0d9488"),
                            rx.recharts.x_axis(data_key="date"),
                            rx.recharts.y_axis(),
                            rx.recharts.graphing_tooltip(),
                            data=F.per_day,
                            width="100%",
                            height=220,
                        ),
                        empty_state(tr("no_spend")),
                    ),
                    rx.heading(tr("spend_per_key"), size="3"),
                    rx.cond(
                        F.per_key.length() > 0,
                        _table(
                            ["key_name", "prefix", "col_jobs", "col_amount"],
                            F.per_key,
                            [lambda r: r["name"], lambda r: r["prefix"], lambda r: r["jobs"],
                             lambda r: r["amount"]],
                        ),
                        empty_state(tr("no_spend")),
                    ),
                    width="100%",
                ),
                width="100%",
            ),
            rx.vstack(
                rx.heading(tr("earnings_per_worker"), size="4"),
                rx.cond(
                    F.per_worker.length() > 0,
                    _table(
                        ["col_worker", "col_name", "col_jobs", "card_rewards", "card_emission", "total"],
                        F.per_worker,
                        [
                            lambda r: r["worker_id"],
                            lambda r: r["name"],
                            lambda r: r["jobs"],
                            lambda r: r["rewards"],
                            lambda r: r["emission"],
                            lambda r: r["total"],
                        ],
                    ),
                    empty_state(tr("no_earnings")),
                ),
                width="100%",
            ),
        ),
        _ledger(),
        width="100%",
        spacing="4",
    )


@page(routes.FINANCE, "Finance", roles=("admin", "worker_owner", "client"), on_load=[FinanceState.clear_notice, FinanceState.load])
def finance_page() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading(tr("finance_title"), size="6"),
            rx.spacer(),
            rx.button(rx.icon("refresh_cw", size=14), tr("refresh"), on_click=F.load, variant="soft"),
            width="100%",
        ),
        error_callout(F.error),
        notice_callout(F.notice),
        rx.cond(F.loaded, rx.cond(AuthState.user_role == "admin", _admin(), _personal()), loading()),
        width="100%",
        spacing="4",
    )
