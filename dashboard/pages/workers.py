"""Workers page: admin sees the whole pool; a worker owner sees their own machines and how to add one."""

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
    status_badge,
    tr,
)
from dashboard.layout import page
from dashboard.state.auth import AuthState
from dashboard.state.workers import WorkersState
from dashboard.styles import mono, table_style

S = WorkersState
STATUSES = ["all", "online", "offline", "draining", "banned"]


def _sort_header(label_key: str, key: str) -> rx.Component:
    return rx.table.column_header_cell(
        rx.hstack(
            rx.text(tr(label_key)),
            rx.cond(S.sort_key == key, rx.icon(rx.cond(S.sort_desc, "arrow_down", "arrow_up"), size=12)),
            align="center",
            spacing="1",
            cursor="pointer",
            on_click=S.sort_by(key),
        )
    )


def _action(row: rx.Var, action: str, color: str) -> rx.Component:
    return confirm_dialog(
        rx.button(
            tr(f"action_{action}"), size="1", variant="soft", color_scheme=color, id=f"{action}-" + row["id"]
        ),
        tr(f"action_{action}"),
        tr(f"confirm_{action}"),
        S.act(row["id"], action),
        reason=True,
        on_reason_change=S.set_reason,
        confirm_label=tr(f"action_{action}"),
        color=color,
    )


def _admin_actions(row: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.cond(
            row["status"] == "draining",
            _action(row, "resume", "green"),
            rx.cond(row["status"] != "banned", _action(row, "drain", "amber")),
        ),
        rx.cond(row["status"] == "banned", _action(row, "unban", "green"), _action(row, "ban", "red")),
        spacing="1",
    )


def _owner_actions(row: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.cond(
            row["status"] == "draining",
            _action(row, "resume", "green"),
            rx.cond(row["status"] != "banned", _action(row, "drain", "amber")),
        ),
        rx.button(tr("why_rejected"), size="1", variant="soft", on_click=S.show_rejections(row["id"])),
        spacing="1",
    )


def _row(row: rx.Var) -> rx.Component:
    is_admin = AuthState.user_role == "admin"
    return rx.table.row(
        rx.table.cell(row["id"]),
        rx.table.cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(row["heartbeat"]),
        rx.table.cell(row["reputation"]),
        rx.table.cell(row["verified"]),
        rx.table.cell(row["rejected"]),
        rx.table.cell(row["active"]),
        rx.table.cell(rx.cond(is_admin, row["owner"], row["region"])),
        rx.table.cell(rx.cond(is_admin, _admin_actions(row), _owner_actions(row))),
    )


def _table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                _sort_header("col_id", "id"),
                _sort_header("col_name", "name"),
                _sort_header("col_status", "status"),
                _sort_header("col_heartbeat", "heartbeat_age_seconds"),
                _sort_header("col_reputation", "reputation"),
                _sort_header("col_verified", "verified_count"),
                _sort_header("col_rejected", "rejected_count"),
                _sort_header("col_active", "active_assignments"),
                rx.cond(
                    AuthState.user_role == "admin",
                    _sort_header("col_owner", "owner_email"),
                    rx.table.column_header_cell(tr("col_region")),
                ),
                rx.table.column_header_cell(tr("col_actions")),
            )
        ),
        rx.table.body(rx.foreach(S.rows, _row)),
        style=table_style,
        variant="surface",
        id="workers-table",
    )


def _how_to_add() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(tr("add_worker_title"), size="3"),
            rx.text(tr("add_worker_intro"), size="2"),
            rx.code_block(
                "# 1. a key pair; the private key stays in ~/.openmesh/worker.key\n"
                "openmesh worker keygen\n"
                "# 2. register this machine with its public key (your worker-owner account)\n"
                "export OPENMESH_COORDINATOR_URL=<coordinator URL> OPENMESH_EMAIL=<your email>\n"
                "export OPENMESH_PASSWORD=<your password>\n"
                "openmesh worker register --name my-gpu-1 --region sa-east\n"
                "# 3. heartbeat, poll, compute, sign and submit until stopped\n"
                "openmesh worker run",
                language="bash",
                width="100%",
            ),
            rx.text(tr("add_worker_keys"), size="2", color_scheme="gray"),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _rejections() -> rx.Component:
    return rx.cond(
        S.rejections_for != "",
        rx.card(
            rx.vstack(
                rx.heading(tr("rejections_for"), " #", S.rejections_for, size="3"),
                rx.cond(
                    S.rejections.length() > 0,
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell(tr("col_job")),
                                rx.table.column_header_cell(tr("col_reason")),
                                rx.table.column_header_cell(tr("col_when")),
                            )
                        ),
                        rx.table.body(
                            rx.foreach(
                                S.rejections,
                                lambda r: rx.table.row(
                                    rx.table.cell(rx.link(r["job_id"], href="/jobs/" + r["job_id"])),
                                    rx.table.cell(rx.text(r["reason"], style=mono)),
                                    rx.table.cell(r["created_at"]),
                                ),
                            )
                        ),
                        width="100%",
                    ),
                    empty_state(tr("no_rejections")),
                ),
                width="100%",
            ),
            width="100%",
        ),
    )


@page(routes.WORKERS, "Workers", roles=("admin", "worker_owner"), on_load=[WorkersState.clear_notice, WorkersState.load])
def workers_page() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading(
                rx.cond(AuthState.user_role == "admin", tr("workers_title_admin"), tr("workers_title_owner")),
                size="6",
            ),
            rx.spacer(),
            rx.button(
                rx.icon("refresh_cw", size=14), tr("refresh"), on_click=S.load, variant="soft", size="2"
            ),
            width="100%",
        ),
        error_callout(S.error),
        notice_callout(S.notice),
        rx.cond(
            S.loaded,
            rx.vstack(
                rx.hstack(
                    rx.input(
                        placeholder=tr("search"),
                        value=S.search,
                        on_change=S.set_search,
                        width="20em",
                        id="workers-search",
                    ),
                    rx.select(STATUSES, value=S.status_filter, on_change=S.set_status_filter, size="2"),
                    rx.text(
                        S.filtered, " / ", S.total, " ", tr("workers_count"), size="2", id="workers-count"
                    ),
                    align="center",
                    spacing="3",
                ),
                rx.cond(S.filtered > 0, _table(), empty_state(tr("no_workers"))),
                pagination(S.page, S.pages, S.filtered, S.prev_page, S.next_page),
                rx.cond(
                    AuthState.user_role == "worker_owner",
                    rx.vstack(_rejections(), _how_to_add(), width="100%"),
                ),
                width="100%",
                spacing="3",
            ),
            loading(),
        ),
        width="100%",
        spacing="4",
    )
