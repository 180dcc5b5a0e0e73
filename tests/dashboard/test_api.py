"""dashboard/api.py: silent refresh (once, then give up), and errors turned into messages."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dashboard import api
from tests.dashboard.conftest import ADMIN


def _run(coro):
    return asyncio.run(coro)


@pytest.fixture
def transport(monkeypatch):
    """Route the client module through a fake coordinator; `calls` records (method, path, auth)."""
    calls: list[tuple[str, str, str]] = []
    handlers: dict = {}

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, request.headers.get("authorization", "")))
        return handlers[request.url.path](request)

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handle))

    monkeypatch.setattr(api, "_client", client)
    return calls, handlers


def test_401_refreshes_once_and_retries(transport):
    calls, handlers = transport
    handlers["/me"] = lambda r: (
        httpx.Response(200, json={"id": 1, "email": "a@b", "role": "admin"})
        if r.headers["authorization"] == "Bearer new-access"
        else httpx.Response(401, json={"detail": "Invalid or expired token"})
    )
    handlers["/auth/refresh"] = lambda r: httpx.Response(
        200, json={"access_token": "new-access", "refresh_token": "new-refresh"}
    )
    tokens = api.Tokens("old-access", "old-refresh")
    me = _run(api.CoordinatorApi(tokens).me())
    assert me["email"] == "a@b"
    assert (tokens.access_token, tokens.refresh_token) == ("new-access", "new-refresh")
    assert [c[1] for c in calls] == ["/me", "/auth/refresh", "/me"]


def test_failed_refresh_expires_the_session(transport):
    _, handlers = transport
    handlers["/me"] = lambda r: httpx.Response(401, json={"detail": "Invalid or expired token"})
    handlers["/auth/refresh"] = lambda r: httpx.Response(401, json={"detail": "Invalid refresh token"})
    with pytest.raises(api.SessionExpired):
        _run(api.CoordinatorApi(api.Tokens("a", "r")).me())


def test_second_401_after_refresh_expires_the_session(transport):
    calls, handlers = transport
    handlers["/me"] = lambda r: httpx.Response(401, json={"detail": "nope"})
    handlers["/auth/refresh"] = lambda r: httpx.Response(
        200, json={"access_token": "x", "refresh_token": "y"}
    )
    with pytest.raises(api.SessionExpired):
        _run(api.CoordinatorApi(api.Tokens("a", "r")).me())
    assert [c[1] for c in calls] == ["/me", "/auth/refresh", "/me"]


def test_validation_errors_become_one_message(transport):
    _, handlers = transport
    handlers["/auth/api-keys"] = lambda r: httpx.Response(
        422, json={"detail": [{"loc": ["body", "name"], "msg": "String should have at least 1 character"}]}
    )
    with pytest.raises(api.ApiError) as err:
        _run(api.CoordinatorApi(api.Tokens("a", "r")).create_api_key(""))
    assert err.value.status == 422
    assert err.value.message == "name: String should have at least 1 character"


def test_unreachable_coordinator_is_a_message(monkeypatch):
    monkeypatch.setenv("COORDINATOR_URL", "http://127.0.0.1:9")
    with pytest.raises(api.ApiError) as err:
        _run(api.login("a@b.c", "x"))
    assert err.value.status == 0
    assert "Cannot reach 127.0.0.1:9" in err.value.message


def test_silent_refresh_against_the_real_coordinator(coordinator, monkeypatch):
    monkeypatch.setenv("COORDINATOR_URL", coordinator)

    async def scenario():
        tokens = await api.login(*ADMIN)
        old_refresh = tokens.refresh_token
        tokens.access_token = "expired-or-garbage"
        me = await api.CoordinatorApi(tokens).me()
        assert me["role"] == "admin"
        assert tokens.refresh_token != old_refresh
        # The rotated-out refresh token no longer works.
        with pytest.raises(api.SessionExpired):
            await api.refresh(api.Tokens("x", old_refresh))
        await api.logout(tokens)
        tokens.access_token = "garbage"
        with pytest.raises(api.SessionExpired):
            await api.CoordinatorApi(tokens).me()

    _run(scenario())
