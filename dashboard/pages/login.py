"""Login and register pages (public)."""

from __future__ import annotations

import reflex as rx

from dashboard import routes
from dashboard.components.common import error_callout, loading, tr
from dashboard.layout import language_switch
from dashboard.state.auth import AuthState
from dashboard.state.login import LoginState, RegisterState


def _shell(*children: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading("OpenMesh Pool", size="6"), rx.spacer(), language_switch(), width="100%"
                ),
                *children,
                # Lets tests (and impatient users' scripts) know the page is wired to the backend.
                rx.cond(rx.State.is_hydrated, rx.box(id="hydrated", display="none")),
                spacing="4",
                width="100%",
            ),
            width="26em",
            padding="1.5em",
        ),
        min_height="100vh",
        background=rx.color("gray", 2),
    )


def login_page() -> rx.Component:
    return _shell(
        rx.text(tr("login_title"), size="4"),
        rx.cond(
            LoginState.notice == "coordinator_down", rx.callout(tr("coordinator_down"), color_scheme="amber")
        ),
        error_callout(LoginState.error),
        rx.form(
            rx.vstack(
                rx.input(
                    placeholder=tr("email"),
                    name="email",
                    type="email",
                    width="100%",
                    id="email",
                    auto_complete="username",
                ),
                rx.input(
                    placeholder=tr("password"),
                    name="password",
                    type="password",
                    width="100%",
                    id="password",
                    auto_complete="current-password",
                ),
                rx.button(
                    tr("login"), type="submit", width="100%", loading=LoginState.busy, id="login-submit"
                ),
                width="100%",
            ),
            on_submit=LoginState.submit,
            width="100%",
        ),
        rx.link(tr("no_account"), href=routes.REGISTER, size="2"),
    )


def register_page() -> rx.Component:
    return _shell(
        rx.text(tr("register_title"), size="4"),
        error_callout(RegisterState.error),
        rx.form(
            rx.vstack(
                rx.input(placeholder=tr("email"), name="email", type="email", width="100%", id="reg-email"),
                rx.input(
                    placeholder=tr("password_8"),
                    name="password",
                    type="password",
                    width="100%",
                    id="reg-password",
                ),
                rx.radio_group.root(
                    rx.hstack(
                        rx.radio_group.item(value="client", id="role-client"),
                        rx.text(tr("role_client")),
                        rx.radio_group.item(value="worker_owner", id="role-owner"),
                        rx.text(tr("role_worker_owner")),
                        spacing="2",
                        align="center",
                    ),
                    value=RegisterState.role,
                    on_change=RegisterState.set_role,
                ),
                rx.button(
                    tr("register"),
                    type="submit",
                    width="100%",
                    loading=RegisterState.busy,
                    id="register-submit",
                ),
                width="100%",
            ),
            on_submit=RegisterState.submit,
            width="100%",
        ),
        rx.link(tr("have_account"), href=routes.LOGIN, size="2"),
    )


def index_page() -> rx.Component:
    """`/` only redirects (to the role's home, or login)."""
    return rx.box(loading(), id="guard-pending")


__all__ = ["AuthState", "index_page", "login_page", "register_page"]
