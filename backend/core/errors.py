"""Domain errors that carry their HTTP status, and the one handler that renders them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule was broken; `status_code` and `detail` become the HTTP answer."""

    status_code = 400
    detail = "Bad request"

    def __init__(self, detail: str | None = None, *, status_code: int | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        self.detail = detail or self.detail
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers
        self.extra = extra or {}
        super().__init__(self.detail)


class BadRequest(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401
    detail = "Not authenticated"


class Forbidden(DomainError):
    status_code = 403
    detail = "Forbidden"


class NotFound(DomainError):
    status_code = 404
    detail = "Not found"


class Conflict(DomainError):
    status_code = 409
    detail = "Conflict"


class Unprocessable(DomainError):
    status_code = 422
    detail = "Unprocessable input"


class InsufficientBalance(DomainError):
    status_code = 402
    detail = "Insufficient balance"


class TooManyRequests(DomainError):
    status_code = 429
    detail = "Rate limit exceeded"


class ServiceUnavailable(DomainError):
    status_code = 503
    detail = "Service unavailable"


def install_handlers(app: Any) -> None:
    """Render DomainError as `{"detail": ...}` with its status (FastAPI's own error shape)."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    async def _handle(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status_code,
                            headers=exc.headers)

    app.add_exception_handler(DomainError, _handle)
