"""Status badges, stat cards, error/empty callouts, pagination, confirmation dialogs."""

from __future__ import annotations

import reflex as rx

from dashboard.state.auth import AuthState
from dashboard.styles import STATUS_COLORS


def tr(key: str) -> rx.Var:
    """The current language's text for `key`."""
    return AuthState.t[key]


def status_badge(status: rx.Var) -> rx.Component:
    cases = [
        (name, rx.badge(name, color_scheme=color, variant="soft")) for name, color in STATUS_COLORS.items()
    ]
    return rx.match(status, *cases, rx.badge(status, variant="soft"))


def stat_card(
    label: rx.Var | str, value: rx.Var | str, hint: rx.Var | str = "", test_id: str = ""
) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.heading(value, size="6", id=test_id or None),
            rx.text(hint, size="1", color_scheme="gray"),
            spacing="1",
        ),
        min_width="12em",
        flex="1",
    )


def error_callout(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert", width="100%"),
    )


def notice_callout(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="info", color_scheme="green", width="100%"),
    )


def empty_state(text: rx.Var | str) -> rx.Component:
    return rx.center(rx.text(text, color_scheme="gray"), padding="2em", width="100%")


def loading() -> rx.Component:
    return rx.center(rx.spinner(size="3"), padding="3em", width="100%")


def pagination(page: rx.Var, pages: rx.Var, total: rx.Var, on_prev, on_next) -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("chevron_left"),
            tr("prev"),
            on_click=on_prev,
            disabled=page <= 1,
            variant="soft",
            size="1",
        ),
        rx.text(tr("page"), " ", page, " / ", pages, " · ", total, " ", tr("rows"), size="2"),
        rx.button(
            tr("next"),
            rx.icon("chevron_right"),
            on_click=on_next,
            disabled=page >= pages,
            variant="soft",
            size="1",
        ),
        align="center",
        spacing="3",
    )


def confirm_dialog(
    trigger: rx.Component,
    title: rx.Var | str,
    description: rx.Var | str,
    on_confirm,
    *,
    reason: bool = False,
    on_reason_change=None,
    confirm_label: rx.Var | str = "OK",
    color: str = "red",
) -> rx.Component:
    """An alert dialog asking for confirmation (and optionally a reason) before an action."""
    body = [rx.alert_dialog.description(description, size="2")]
    if reason:
        body.append(
            rx.input(
                placeholder=tr("reason"),
                on_change=on_reason_change,
                width="100%",
                margin_top="0.75em",
                name="reason",
            )
        )
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(trigger),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            *body,
            rx.hstack(
                rx.alert_dialog.cancel(rx.button(tr("cancel"), variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button(confirm_label, color_scheme=color, on_click=on_confirm)),
                spacing="3",
                margin_top="1em",
                justify="end",
            ),
        ),
    )
