"""OpenAI's error object for the OpenAI-compatible routes.

`{"error": {"message", "type", "param", "code"}}` with the gateway's status codes: 400 bad parameter or
token-id input, 401 invalid_api_key, 402 insufficient_quota, 404 model_not_found, 413 request_too_large,
422 invalid input (empty text, too many inputs, ...), 429 rate_limit_exceeded (with Retry-After and
X-RateLimit-*), 502 job_failed, 503 verification_timeout / service_unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from backend.core.errors import DomainError
from backend.core.http import _validation_payload

_DEFAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "invalid_value"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    502: ("server_error", "job_failed"),
    503: ("server_error", "service_unavailable"),
}


class OpenAIError(DomainError):
    """A DomainError that already knows its OpenAI `param`, `code` and `type`."""

    def __init__(self, message: str, *, status_code: int = 400, param: str | None = None,
                 code: str | None = None, type_: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, status_code=status_code, headers=headers)
        self.param = param
        self.code = code
        self.type_ = type_


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None,
               type_: str | None = None) -> dict[str, Any]:
    d_type, d_code = _DEFAULTS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    if status == 503 and code is None and message == "Verification timeout":
        code = "verification_timeout"
    return {"error": {"message": message, "type": type_ or d_type, "param": param, "code": code or d_code}}


def error_response(status: int, message: str, *, param: str | None = None, code: str | None = None,
                   type_: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param, code=code, type_=type_),
                        status_code=status, headers=headers)


def _message(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                field = item.get("field") or ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{field}: {item.get('msg', 'invalid')}" if field else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts) or "Invalid request"
    return str(detail)


def from_exception(exc: Exception) -> JSONResponse:
    if isinstance(exc, OpenAIError):
        return error_response(exc.status_code, str(exc.detail), param=exc.param, code=exc.code,
                              type_=exc.type_, headers=exc.headers)
    if isinstance(exc, RequestValidationError):
        status, payload = _validation_payload(exc)
        detail = payload["detail"]
        param = detail[0].get("field") if isinstance(detail, list) and detail else None
        code = "invalid_json" if status == 400 else None
        return error_response(status, _message(detail), param=param or None, code=code)
    if isinstance(exc, DomainError):
        return error_response(exc.status_code, _message(exc.detail), headers=exc.headers)
    if isinstance(exc, HTTPException):
        return error_response(exc.status_code, _message(exc.detail), headers=exc.headers)
    raise exc


class OpenAIRoute(APIRoute):
    """Renders every error of the route (auth, limits, validation, coordinator) as an OpenAI error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except (DomainError, RequestValidationError, HTTPException) as exc:
                return from_exception(exc)

        return handler
