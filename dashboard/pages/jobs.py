"""Jobs page (queue and history, filters, server-side paging, demo load) and the job detail page."""

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
from dashboard.state.jobs import JobDetailState, JobsState
from dashboard.styles import mono, table_style

JOB_STATUSES = ["all", "queued", "disputed", "verified", "failed", "cancelled"]
JOB_TYPES = ["all", "embed", "rank"]


def _filters() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.select(JOB_STATUSES, default_value="all", name="status", size="2"),
            rx.select(JOB_TYPES, default_value="all", name="job_type", size="2"),
            rx.input(placeholder=tr("client_id"), name="client_id", width="8em"),
            rx.input(placeholder=tr("worker_id"), name="worker_id", width="8em"),
            rx.text(tr("since"), size="2"),
            rx.input(type="date", name="since"),
            rx.text(tr("until"), size="2"),
            rx.input(type="date", name="until"),
            rx.button(tr("filter"), type="submit", size="2"),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        on_submit=JobsState.apply_filters,
        width="100%",
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["id"], href="/jobs/" + row["id"])),
        rx.table.cell(row["job_type"]),
        rx.table.cell(
            rx.hstack(
                status_badge(row["status"]),
                rx.cond(row["audit"] != "", rx.badge("audit", color_scheme="purple")),
            )
        ),
        rx.table.cell(row["client"]),
        rx.table.cell(row["created_at"]),
        rx.table.cell(row["finished_at"]),
        rx.table.cell(row["price"]),
    )


def _table() -> rx.Component:
    cols = ["col_id", "col_type", "col_status", "col_client", "col_created", "col_finished", "col_price"]
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(tr(c)) for c in cols])),
        rx.table.body(rx.foreach(JobsState.rows, _row)),
        style=table_style,
        variant="surface",
        id="jobs-table",
    )


@page(routes.JOBS, "Jobs", roles=("admin",), on_load=[JobsState.clear_notice, JobsState.load])
def jobs_page() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading(tr("jobs_title"), size="6"),
            rx.spacer(),
            rx.input(
                value=JobsState.demo_count, on_change=JobsState.set_demo_count, width="5em", type="number"
            ),
            rx.button(
                rx.icon("plus", size=14),
                tr("enqueue_demo"),
                on_click=JobsState.enqueue_demo,
                size="2",
                id="enqueue-demo",
            ),
            rx.button(rx.icon("refresh_cw", size=14), tr("refresh"), on_click=JobsState.load, variant="soft"),
            width="100%",
            align="center",
        ),
        error_callout(JobsState.error),
        notice_callout(JobsState.notice),
        _filters(),
        rx.cond(
            JobsState.loaded,
            rx.vstack(
                rx.hstack(
                    rx.text(JobsState.total, " ", tr("jobs_count"), size="2", id="jobs-count"),
                    rx.cond(JobsState.live, rx.badge(tr("live"), color_scheme="green")),
                    rx.text(tr("updated"), " ", JobsState.last_update, size="1", color_scheme="gray"),
                    align="center",
                    spacing="2",
                ),
                rx.cond(JobsState.rows.length() > 0, _table(), empty_state(tr("no_jobs"))),
                pagination(
                    JobsState.page, JobsState.pages, JobsState.total, JobsState.prev_page, JobsState.next_page
                ),
                width="100%",
                spacing="3",
            ),
            loading(),
        ),
        width="100%",
        spacing="4",
    )


def _kv(label_key: str, value: rx.Var) -> rx.Component:
    return rx.hstack(rx.text(tr(label_key), weight="bold", min_width="9em"), rx.text(value), spacing="2")


def _job_action(action: str, color: str) -> rx.Component:
    return confirm_dialog(
        rx.button(tr(f"action_{action}"), color_scheme=color, variant="soft", size="2"),
        tr(f"action_{action}"),
        tr(f"confirm_job_{action}"),
        JobDetailState.act(action),
        reason=True,
        on_reason_change=JobDetailState.set_reason,
        confirm_label=tr(f"action_{action}"),
        color=color,
    )


def _assignment(a: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(a["id"]),
        rx.table.cell(a["worker_id"]),
        rx.table.cell(status_badge(a["status"])),
        rx.table.cell(a["similarity"]),
        rx.table.cell(a["reject_reason"]),
        rx.table.cell(a["submitted_at"]),
        rx.table.cell(rx.text(a["output_hash"], style=mono, trim="both")),
    )


@page(routes.JOB_DETAIL, "Job", roles=("admin",), on_load=[JobDetailState.clear, JobDetailState.load])
def job_detail_page() -> rx.Component:
    s = JobDetailState
    return rx.vstack(
        rx.hstack(
            rx.link(rx.icon("arrow_left", size=14), tr("nav_jobs"), href=routes.JOBS),
            rx.heading(tr("job"), " #", s.detail_id, size="6"),
            rx.spacer(),
            _job_action("requeue", "amber"),
            _job_action("cancel", "red"),
            width="100%",
            align="center",
            spacing="3",
        ),
        error_callout(s.error),
        notice_callout(s.notice),
        rx.cond(
            s.loaded,
            rx.cond(
                s.job.contains("id"),
                rx.vstack(
                    rx.card(
                        rx.vstack(
                            _kv("col_type", s.job["job_type"]),
                            rx.hstack(
                                rx.text(tr("col_status"), weight="bold", min_width="9em"),
                                status_badge(s.job["status"]),
                            ),
                            _kv("col_client", s.job["client"]),
                            _kv("col_created", s.job["created_at"]),
                            _kv("col_finished", s.job["finished_at"]),
                            _kv("col_price", s.job["price"]),
                            _kv("request_id", s.job["request_id"]),
                            spacing="1",
                        ),
                        width="100%",
                    ),
                    rx.heading(tr("assignments"), size="4"),
                    rx.cond(
                        s.assignments.length() > 0,
                        rx.table.root(
                            rx.table.header(
                                rx.table.row(
                                    *[
                                        rx.table.column_header_cell(tr(c))
                                        for c in (
                                            "col_id",
                                            "col_worker",
                                            "col_status",
                                            "col_similarity",
                                            "col_reason",
                                            "col_submitted",
                                            "col_hash",
                                        )
                                    ]
                                )
                            ),
                            rx.table.body(rx.foreach(s.assignments, _assignment)),
                            style=table_style,
                            variant="surface",
                        ),
                        empty_state(tr("no_assignments")),
                    ),
                    rx.heading(tr("verification"), size="4"),
                    rx.cond(
                        s.verification != "",
                        rx.code_block(s.verification, language="json", width="100%"),
                        empty_state(tr("no_verification")),
                    ),
                    rx.cond(
                        s.output != "",
                        rx.vstack(
                            rx.heading(tr("receipt_output"), size="4"),
                            rx.text(s.output, style=mono),
                            width="100%",
                        ),
                    ),
                    width="100%",
                    spacing="3",
                ),
                empty_state(tr("job_not_found")),
            ),
            loading(),
        ),
        width="100%",
        spacing="4",
    )
