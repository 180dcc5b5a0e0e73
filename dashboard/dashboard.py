"""The Reflex app: theme and every page, registered explicitly."""

from __future__ import annotations

import reflex as rx

from dashboard import routes
from dashboard.pages.api_keys import api_keys_page
from dashboard.pages.finance import finance_page
from dashboard.pages.health import health_page
from dashboard.pages.jobs import job_detail_page, jobs_page
from dashboard.pages.login import index_page, login_page, register_page
from dashboard.pages.workers import workers_page
from dashboard.state.auth import AuthState
from dashboard.state.login import LoginState, RegisterState

app = rx.App(head_components=[rx.el.link(rel="icon", type="image/svg+xml", href="/favicon.svg")])

app.add_page(index_page, route=routes.HOME, title="OpenMesh Pool", on_load=AuthState.redirect_home)
app.add_page(login_page, route=routes.LOGIN, title="Login · OpenMesh Pool", on_load=LoginState.on_load)
app.add_page(
    register_page, route=routes.REGISTER, title="Register · OpenMesh Pool", on_load=RegisterState.on_load
)
for protected in (workers_page, jobs_page, job_detail_page, finance_page, health_page, api_keys_page):
    app.add_page(
        protected,
        route=protected._page_route,
        title=protected._page_title,
        on_load=protected._page_on_load,
    )
