"""AuthState: the session every page state inherits (server-side tokens, login guard, logout, language)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import reflex as rx

from dashboard import api, routes
from dashboard.i18n import LANGUAGES, TEXT

SESSION_DAYS = 14


@dataclass
class _Session:
    tokens: api.Tokens
    created: float = field(default_factory=time.time)


# Tokens never reach the browser: the browser holds only an opaque random session id (cookie, for new tabs
# and reloads) that maps to the pair here, in the dashboard backend process. Restarting the dashboard
# backend logs everyone out, which is the safe failure.
_SESSIONS: dict[str, _Session] = {}


def _safe_next(target: str) -> str:
    # Only same-site paths: "//evil.example" or "https://..." would turn login into an open redirect.
    if target.startswith("/") and not target.startswith("//") and not target.startswith(routes.LOGIN):
        return target
    return ""


class AuthState(rx.State):
    """Who is logged in; page states inherit it and call the coordinator through `self.api()`."""

    sid: str = rx.Cookie("", name="openmesh_sid", path="/", max_age=SESSION_DAYS * 86400, same_site="strict")
    lang: str = rx.LocalStorage("en", name="openmesh_lang", sync=True)
    user_id: int = 0
    user_email: str = ""
    user_role: str = ""
    # True only after /me answered for the current session: nothing protected renders before that.
    session_checked: bool = False

    @rx.var
    def is_authenticated(self) -> bool:
        return self.session_checked and self.user_role != ""

    @rx.var
    def t(self) -> dict[str, str]:
        return TEXT.get(self.lang, TEXT["en"])

    @rx.var
    def home(self) -> str:
        return routes.home_for(self.user_role)

    def _tokens(self) -> api.Tokens | None:
        session = _SESSIONS.get(self.sid) if self.sid else None
        if session is None or time.time() - session.created > SESSION_DAYS * 86400:
            return None
        return session.tokens

    def api(self) -> api.CoordinatorApi:
        tokens = self._tokens()
        if tokens is None:
            raise api.SessionExpired("Please log in", 401)
        return api.CoordinatorApi(tokens)

    def _start_session(self, tokens: api.Tokens, me: dict) -> None:
        cutoff = time.time() - SESSION_DAYS * 86400
        for stale in [k for k, v in _SESSIONS.items() if v.created < cutoff]:
            _SESSIONS.pop(stale, None)
        sid = secrets.token_urlsafe(32)
        _SESSIONS[sid] = _Session(tokens)
        self.sid = sid
        self._set_user(me)

    def _set_user(self, me: dict) -> None:
        self.user_id = int(me.get("id") or 0)
        self.user_email = str(me.get("email") or "")
        self.user_role = str(me.get("role") or "")
        self.session_checked = True

    async def _drop_session(self) -> None:
        _SESSIONS.pop(self.sid, None)
        self.sid = ""
        self.user_id = 0
        self.user_email = ""
        self.user_role = ""
        self.session_checked = False
        # Forget every page's data too, so Back after logout has nothing protected to show.
        for sub in type(self).get_substates():
            state = await self.get_state(sub)
            state.reset()

    async def expire(self):
        """Called when a call raised SessionExpired: drop the session and go to login."""
        await self._drop_session()
        return rx.redirect(f"{routes.LOGIN}?next={self.router.url.path}")

    async def _action(self, call: Callable[[api.CoordinatorApi], Awaitable[Any]],
                      describe: str | Callable[[Any], str]) -> Any:
        """Run one user action against the coordinator and report it on the page's `notice`/`error`.

        Returns the login redirect when the session has died, else None (the caller then reloads).
        """
        try:
            result = await call(self.api())
        except api.SessionExpired:
            return await self.expire()
        except api.ApiError as exc:
            self.error, self.notice = exc.message, ""  # type: ignore[attr-defined]
            return None
        self.notice = describe(result) if callable(describe) else describe  # type: ignore[attr-defined]
        self.error = ""  # type: ignore[attr-defined]
        return None

    @rx.event
    async def require_login(self, roles: str = ""):
        """The login guard (page on_load): validate the session with /me, enforce the page's roles."""
        path = self.router.url.path
        if self._tokens() is None:
            if self.session_checked or self.user_role:
                await self._drop_session()
            return rx.redirect(f"{routes.LOGIN}?next={path}")
        if not self.session_checked:
            try:
                self._set_user(await self.api().me())
            except api.SessionExpired:
                return await self.expire()
            except api.ApiError:
                # Coordinator down: keep the session but show nothing protected; the page shows the error.
                return rx.redirect(f"{routes.LOGIN}?next={path}&down=1")
        allowed = [r for r in roles.split(",") if r]
        if allowed and self.user_role not in allowed:
            return rx.redirect(routes.home_for(self.user_role))
        return None

    @rx.event
    async def redirect_home(self):
        """The / route: go to the role's home (or login)."""
        if self._tokens() is None:
            return rx.redirect(routes.LOGIN)
        if not self.session_checked:
            try:
                self._set_user(await self.api().me())
            except api.ApiError:
                return await self.expire()
        return rx.redirect(routes.home_for(self.user_role))

    @rx.event
    async def logout(self):
        tokens = self._tokens()
        if tokens is not None:
            await api.logout(tokens)
        await self._drop_session()
        return rx.redirect(routes.LOGIN)

    @rx.event
    def set_lang(self, value: str):
        if value in LANGUAGES:
            self.lang = value
