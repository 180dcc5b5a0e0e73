"""The page decorator: sidebar + header chrome, on_load, and the login guard (C35)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import reflex as rx

from dashboard import routes
from dashboard.components.common import loading, tr
from dashboard.i18n import LANGUAGES
from dashboard.state.auth import AuthState
from dashboard.styles import ACCENT, SIDEBAR_WIDTH, page_style

# (route, text key, icon, roles that see it)
NAV = [
    (routes.WORKERS, "nav_workers", "server", ("admin", "worker_owner")),
    (routes.JOBS, "nav_jobs", "list_checks", ("admin",)),
    (routes.FINANCE, "nav_finance", "wallet", ("admin", "worker_owner", "client")),
    (routes.HEALTH, "nav_health", "activity", ("admin",)),
    (routes.API_KEYS, "nav_api_keys", "key_round", ("client",)),
]


def _role_is(roles: tuple[str, ...]) -> rx.Var:
    return functools.reduce(lambda a, b: a | b, [AuthState.user_role == r for r in roles])


def language_switch() -> rx.Component:
    return rx.hstack(
        *[
            rx.button(
                code,
                size="1",
                id=f"lang-{code}",
                variant=rx.cond(AuthState.lang == code, "solid", "soft"),
                on_click=AuthState.set_lang(code),
            )
            for code in LANGUAGES
        ],
        spacing="1",
    )


def sidebar() -> rx.Component:
    links = [
        rx.cond(
            _role_is(roles),
            rx.link(
                rx.hstack(rx.icon(icon, size=16), rx.text(tr(key)), align="center", spacing="2"),
                href=route,
                underline="none",
                width="100%",
                padding="0.4em 0.6em",
                border_radius="6px",
                _hover={"background": rx.color(ACCENT, 3)},
                id=f"nav-{route.strip('/')}",
            ),
        )
        for route, key, icon, roles in NAV
    ]
    return rx.vstack(
        rx.heading("OpenMesh Pool", size="4", margin_bottom="0.5em"),
        *links,
        rx.spacer(),
        rx.divider(),
        rx.text(AuthState.user_email, size="1", id="user-email"),
        rx.badge(AuthState.user_role, id="user-role"),
        language_switch(),
        rx.button(
            rx.icon("log_out", size=14),
            tr("logout"),
            on_click=AuthState.logout,
            variant="soft",
            size="2",
            width="100%",
            id="logout",
        ),
        width=SIDEBAR_WIDTH,
        min_width=SIDEBAR_WIDTH,
        height="100vh",
        position="sticky",
        top="0",
        padding="1em",
        spacing="2",
        background=rx.color("gray", 2),
        border_right=f"1px solid {rx.color('gray', 5)}",
    )


def page(
    route: str,
    title: str,
    roles: tuple[str, ...] = (),
    on_load: list | None = None,
) -> Callable[[Callable[[], rx.Component]], Callable[[], rx.Component]]:
    """Register a protected page: the body renders only once the session is checked and the role allowed.

    Until then (and for a visitor without a session, who is redirected to login) the page is a spinner, so
    no protected data is ever in the DOM.
    """

    def decorator(body: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
        @functools.wraps(body)
        def wrapped() -> rx.Component:
            allowed = AuthState.is_authenticated & (_role_is(roles) if roles else True)
            return rx.cond(
                allowed,
                rx.hstack(
                    sidebar(),
                    rx.box(body(), style=page_style),
                    spacing="0",
                    align="start",
                    width="100%",
                ),
                rx.box(loading(), id="guard-pending"),
            )

        wrapped._page_route = route  # type: ignore[attr-defined]
        wrapped._page_title = f"{title} · OpenMesh Pool"  # type: ignore[attr-defined]
        wrapped._page_on_load = [AuthState.require_login(",".join(roles)), *(on_load or [])]  # type: ignore[attr-defined]
        return wrapped

    return decorator
