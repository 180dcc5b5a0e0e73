"""HTTP routes of the auth domain: register, login (JSON or OAuth2 form), refresh, logout, API keys."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from backend.coordinator.auth import service
from backend.coordinator.auth.limits import client_ip
from backend.coordinator.auth.schemas import (
    ApiKeyCreated,
    ApiKeyCreateIn,
    ApiKeyList,
    ApiKeyOut,
    LoginIn,
    LogoutIn,
    RefreshIn,
    RegisterIn,
    TokenPair,
    UserOut,
)
from backend.coordinator.deps import ClientUser, SessionDep, get_current_user, oauth2_scheme
from backend.core.errors import BadRequest, Unauthorized
from backend.models import User

router = APIRouter(prefix="/auth", tags=["auth"])

_FORM = "application/x-www-form-urlencoded"
_LOGIN_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": LoginIn.model_json_schema()},
        _FORM: {"schema": {
            "type": "object", "title": "OAuth2PasswordForm", "required": ["username", "password"],
            "properties": {"grant_type": {"type": "string", "enum": ["password"]},
                           "username": {"type": "string", "description": "The account's email"},
                           "password": {"type": "string", "format": "password"}}}},
    },
}


async def _login_body(request: Request) -> LoginIn:
    """`{email, password}` as JSON, or the OAuth2 password form (username = email) Swagger sends."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == _FORM:
            try:
                form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
            except (UnicodeDecodeError, ValueError):
                raise BadRequest("Request body is not a valid form") from None
            data = {"email": (form.get("username") or form.get("email") or [None])[0],
                    "password": (form.get("password") or [None])[0]}
            data = {k: v for k, v in data.items() if v is not None}
        else:
            try:
                data = json.loads(raw)
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise BadRequest("Request body is not valid JSON (or not valid UTF-8)") from None
        return LoginIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]) from None


def _optional_user(session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User | None:
    """The bearer's user, or None: an expired access token must not stop a logout by refresh token."""
    if not token:
        return None
    try:
        return get_current_user(session, token)
    except Unauthorized:
        return None


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut,
             responses={409: {"description": "Email already registered"}})
def register(body: RegisterIn, session: SessionDep) -> UserOut:
    user = service.register(session, email=body.email, password=body.password, role=body.role)
    return UserOut.model_validate(user)


@router.post("/login", response_model=TokenPair, openapi_extra={"requestBody": _LOGIN_BODY},
             responses={401: {"description": "Invalid email or password"},
                        429: {"description": "Too many login attempts, try again later"}})
def login(request: Request, body: Annotated[LoginIn, Depends(_login_body)], session: SessionDep) -> TokenPair:
    return service.login(session, email=body.email, password=body.password, client_ip=client_ip(request))


@router.post("/refresh", response_model=TokenPair, responses={401: {"description": "Invalid refresh token"}})
def refresh(body: RefreshIn, session: SessionDep) -> TokenPair:
    return service.refresh(session, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(session: SessionDep, user: Annotated[User | None, Depends(_optional_user)],
           body: LogoutIn | None = None) -> Response:
    service.logout(session, refresh_token=body.refresh_token if body else None, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(body: ApiKeyCreateIn, user: ClientUser, session: SessionDep) -> ApiKeyCreated:
    key, raw = service.create_api_key(session, user, body.name)
    assert key.id is not None
    return ApiKeyCreated(id=key.id, name=key.name, prefix=key.prefix, key=raw, created_at=key.created_at)


@router.get("/api-keys", response_model=ApiKeyList)
def list_api_keys(user: ClientUser, session: SessionDep) -> ApiKeyList:
    return ApiKeyList(api_keys=[ApiKeyOut.model_validate(k) for k in service.list_api_keys(session, user)])


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def revoke_api_key(key_id: int, user: ClientUser, session: SessionDep) -> Response:
    service.revoke_api_key(session, user, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

