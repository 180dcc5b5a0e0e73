"""API keys page (clients): create (shown once), list, revoke; and a small gateway playground."""

from __future__ import annotations

import reflex as rx

from dashboard import routes
from dashboard.components.common import (
    confirm_dialog,
    empty_state,
    error_callout,
    loading,
    notice_callout,
    tr,
)
from dashboard.layout import page
from dashboard.state.api_keys import ApiKeysState
from dashboard.styles import mono, table_style

K = ApiKeysState


def _new_key() -> rx.Component:
    return rx.cond(
        K.new_key != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle_alert")),
            rx.vstack(
                rx.text(tr("key_shown_once"), weight="bold"),
                rx.hstack(
                    rx.code(K.new_key, id="new-key", style=mono),
                    rx.button(
                        rx.icon("copy", size=14),
                        tr("copy"),
                        size="1",
                        on_click=[rx.set_clipboard(K.new_key), rx.toast(tr("copied"))],
                    ),
                    rx.button(tr("done"), size="1", variant="soft", on_click=K.dismiss_new_key),
                    align="center",
                    wrap="wrap",
                ),
                spacing="2",
            ),
            color_scheme="amber",
            width="100%",
        ),
    )


def _row(k: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(k["id"]),
        rx.table.cell(k["name"]),
        rx.table.cell(rx.code(k["prefix"])),
        rx.table.cell(k["created_at"]),
        rx.table.cell(k["last_used_at"]),
        rx.table.cell(
            rx.cond(
                k["active"] != "",
                confirm_dialog(
                    rx.button(
                        tr("revoke"), size="1", color_scheme="red", variant="soft", id="revoke-" + k["id"]
                    ),
                    tr("revoke"),
                    tr("confirm_revoke"),
                    K.revoke(k["id"]),
                    confirm_label=tr("revoke"),
                ),
                rx.badge(tr("revoked"), " ", k["revoked_at"], color_scheme="gray"),
            )
        ),
        id="key-row-" + k["id"],
    )


def _playground() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(tr("playground"), size="4"),
            rx.text(tr("playground_intro"), size="2", color_scheme="gray"),
            rx.hstack(
                rx.input(
                    placeholder="X-API-Key",
                    type="password",
                    value=K.pg_key,
                    on_change=K.set_pg_key,
                    width="28em",
                    id="pg-key",
                ),
                rx.select(["embed", "rank"], value=K.pg_kind, on_change=K.set_pg_kind),
                spacing="2",
            ),
            rx.text_area(value=K.pg_text, on_change=K.set_pg_text, width="100%", rows="3", id="pg-text"),
            rx.cond(
                K.pg_kind == "rank",
                rx.text_area(
                    value=K.pg_texts,
                    on_change=K.set_pg_texts,
                    width="100%",
                    rows="4",
                    placeholder=tr("one_text_per_line"),
                ),
            ),
            rx.button(tr("send"), on_click=K.send, loading=K.pg_busy, id="pg-send"),
            error_callout(K.pg_error),
            rx.cond(
                K.pg_answer != "",
                rx.vstack(
                    rx.text(tr("answer"), weight="bold"),
                    rx.text(K.pg_answer, style=mono, id="pg-answer"),
                    rx.text(tr("receipt"), weight="bold"),
                    rx.code_block(K.pg_receipt, language="json", width="100%"),
                    width="100%",
                ),
            ),
            width="100%",
            spacing="3",
        ),
        width="100%",
    )


@page(routes.API_KEYS, "API keys", roles=("client",), on_load=[ApiKeysState.clear_notice, ApiKeysState.load])
def api_keys_page() -> rx.Component:
    return rx.vstack(
        rx.heading(tr("api_keys_title"), size="6"),
        error_callout(K.error),
        notice_callout(K.notice),
        rx.form(
            rx.hstack(
                rx.input(placeholder=tr("key_name"), name="name", width="20em", id="key-name"),
                rx.button(rx.icon("plus", size=14), tr("create_key"), type="submit", id="create-key"),
                spacing="2",
            ),
            on_submit=K.create,
            reset_on_submit=True,
        ),
        _new_key(),
        rx.cond(
            K.loaded,
            rx.cond(
                K.keys.length() > 0,
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(tr(c))
                                for c in (
                                    "col_id",
                                    "col_name",
                                    "prefix",
                                    "col_created",
                                    "last_used",
                                    "col_actions",
                                )
                            ]
                        )
                    ),
                    rx.table.body(rx.foreach(K.keys, _row)),
                    style=table_style,
                    variant="surface",
                    id="keys-table",
                ),
                empty_state(tr("no_keys")),
            ),
            loading(),
        ),
        _playground(),
        width="100%",
        spacing="4",
        on_unmount=K.on_leave,
    )
