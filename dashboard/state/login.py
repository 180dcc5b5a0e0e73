"""LoginState and RegisterState: the two public pages' forms."""

from __future__ import annotations

import reflex as rx

from dashboard import api, routes
from dashboard.state.auth import AuthState, _safe_next

SELF_SERVICE_ROLES = ("client", "worker_owner")


class LoginState(AuthState):
    """The login form."""

    error: str = ""
    notice: str = ""
    busy: bool = False

    @rx.event
    async def on_load(self):
        self.error = ""
        self.busy = False
        params = self.router.url.query_parameters
        self.notice = "coordinator_down" if params.get("down") else ""
        if self._tokens() is not None and self.session_checked:
            return rx.redirect(_safe_next(params.get("next", "")) or routes.home_for(self.user_role))
        return None

    @rx.event
    async def submit(self, form: dict):
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        if not email or not password:
            self.error = "Email and password are required"
            return
        self.busy = True
        self.error = ""
        yield
        try:
            tokens = await api.login(email, password)
            me = await api.CoordinatorApi(tokens).me()
        except api.ApiError as exc:
            self.busy = False
            self.error = "Wrong email or password" if exc.status == 401 else exc.message
            return
        self._start_session(tokens, me)
        self.busy = False
        target = _safe_next(self.router.url.query_parameters.get("next", ""))
        yield rx.redirect(target or routes.home_for(self.user_role))


class RegisterState(AuthState):
    """Self-registration for clients and worker owners (admins are created from settings)."""

    error: str = ""
    done: bool = False
    busy: bool = False
    role: str = "client"

    @rx.event
    def on_load(self):
        self.error = ""
        self.done = False
        self.busy = False

    @rx.event
    def set_role(self, value: str):
        self.role = value

    @rx.event
    async def submit(self, form: dict):
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        role = self.role
        if role not in SELF_SERVICE_ROLES:
            self.error = "Choose client or worker owner"
            return
        if not email or len(password) < 8:
            self.error = "An email and a password of at least 8 characters are required"
            return
        self.busy = True
        yield
        try:
            await api.register(email, password, role)
            tokens = await api.login(email, password)
            me = await api.CoordinatorApi(tokens).me()
        except api.ApiError as exc:
            self.busy = False
            self.error = "This email is already registered" if exc.status == 409 else exc.message
            return
        self._start_session(tokens, me)
        self.busy = False
        yield rx.redirect(routes.home_for(self.user_role))
