"""Health/Metrics page: service health, readiness, and live request/latency/error/verification charts."""

from __future__ import annotations

import reflex as rx

from dashboard import routes
from dashboard.components.common import empty_state, error_callout, loading, stat_card, tr
from dashboard.layout import page
from dashboard.state.auth import AuthState
from dashboard.state.health import HealthState

H = HealthState


def _service(s: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(s["service"], weight="bold"),
                rx.badge(s["status"], color_scheme=rx.cond(s["status"] == "up", "green", "red")),
            ),
            rx.text(s["detail"], size="1", color_scheme="gray"),
            spacing="1",
        ),
        min_width="14em",
        flex="1",
    )


def _chart(title_key: str, keys: list[tuple[str, str]]) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(tr(title_key), size="3"),
            rx.recharts.line_chart(
                *[
                    rx.recharts.line(data_key=k, stroke=c, name=k, dot=False, is_animation_active=False)
                    for k, c in keys
                ],
                rx.recharts.x_axis(data_key="t"),
                rx.recharts.y_axis(),
                rx.recharts.legend(),
                rx.recharts.graphing_tooltip(),
                data=H.history,
                width="100%",
                height=200,
            ),
            width="100%",
        ),
        width="100%",
    )


@page(routes.HEALTH, "Health", roles=("admin",), on_load=[HealthState.load])
def health_page() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading(tr("health_title"), size="6"),
            rx.spacer(),
            rx.cond(H.live, rx.badge(tr("live"), color_scheme="green"), rx.badge(tr("paused"))),
            rx.text(tr("updated"), " ", H.last_update, size="1", color_scheme="gray"),
            rx.button(rx.icon("refresh_cw", size=14), tr("refresh"), on_click=H.load, variant="soft"),
            width="100%",
            align="center",
        ),
        rx.cond(
            H.loaded,
            rx.vstack(
                rx.flex(
                    rx.foreach(H.services, _service), spacing="3", wrap="wrap", width="100%", id="services"
                ),
                rx.heading(
                    tr("readiness"),
                    " ",
                    rx.badge(
                        rx.cond(H.ready_ok, tr("ready"), tr("not_ready")),
                        color_scheme=rx.cond(H.ready_ok, "green", "red"),
                    ),
                    size="4",
                ),
                rx.cond(
                    H.ready.length() > 0,
                    rx.flex(
                        rx.foreach(H.ready, lambda kv: stat_card(AuthState.t[kv[0]].to(str), kv[1])),
                        spacing="3",
                        wrap="wrap",
                        width="100%",
                        id="ready-checks",
                    ),
                    empty_state(tr("no_ready")),
                ),
                rx.cond(
                    H.ready_warnings != "",
                    rx.callout(H.ready_warnings, icon="info", color_scheme="amber", width="100%", id="ready-warnings"),
                ),
                error_callout(H.metrics_error),
                rx.cond(
                    H.history.length() > 0,
                    rx.grid(
                        _chart("chart_rate", [("coordinator_rps", "#0d9488"), ("gateway_rps", "#2563eb")]),
                        _chart(
                            "chart_latency",
                            [
                                ("coordinator_mean_ms", "#0d9488"),
                                ("coordinator_p95_ms", "#14b8a6"),
                                ("gateway_mean_ms", "#2563eb"),
                                ("gateway_p95_ms", "#60a5fa"),
                            ],
                        ),
                        _chart(
                            "chart_errors",
                            [("coordinator_err_rps", "#dc2626"), ("gateway_err_rps", "#f97316")],
                        ),
                        columns="2",
                        spacing="3",
                        width="100%",
                    ),
                    rx.text(tr("collecting"), size="2", color_scheme="gray"),
                ),
                rx.grid(
                    rx.card(
                        rx.vstack(
                            rx.heading(tr("chart_verification"), size="3"),
                            rx.cond(
                                H.verification.length() > 0,
                                rx.recharts.bar_chart(
                                    rx.recharts.bar(
                                        data_key="count", fill="#9333ea", is_animation_active=False
                                    ),
                                    rx.recharts.x_axis(data_key="outcome"),
                                    rx.recharts.y_axis(),
                                    rx.recharts.graphing_tooltip(),
                                    data=H.verification,
                                    width="100%",
                                    height=200,
                                ),
                                empty_state(tr("no_data")),
                            ),
                            width="100%",
                        ),
                        width="100%",
                    ),
                    rx.card(
                        rx.vstack(
                            rx.heading(tr("queue_and_workers"), size="3"),
                            rx.foreach(
                                H.jobs_by_status,
                                lambda r: rx.hstack(
                                    rx.text(tr("nav_jobs"), " ", r["status"]),
                                    rx.spacer(),
                                    rx.text(r["count"]),
                                    width="100%",
                                ),
                            ),
                            rx.foreach(
                                H.workers_by_status,
                                lambda r: rx.hstack(
                                    rx.text(tr("nav_workers"), " ", r["status"]),
                                    rx.spacer(),
                                    rx.text(r["count"]),
                                    width="100%",
                                ),
                            ),
                            width="100%",
                        ),
                        width="100%",
                    ),
                    columns="2",
                    spacing="3",
                    width="100%",
                ),
                width="100%",
                spacing="4",
            ),
            loading(),
        ),
        width="100%",
        spacing="4",
    )
