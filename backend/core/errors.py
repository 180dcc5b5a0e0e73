"""Domain errors that carry their HTTP status, and the one handler that renders them."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("openmesh.errors")


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

    async def _out_of_range(_: Request, exc: Exception) -> JSONResponse:
        # An id or count beyond what the database column holds (SQLite: 64-bit, PostgreSQL: 32-bit
        # ids) can match nothing: it is the client's bad input, never a server error.
        log.warning("number out of the database's range in a request: %s", str(exc).splitlines()[0][:200])
        return JSONResponse({"detail": OUT_OF_RANGE}, status_code=422)

    async def _data_error(request: Request, exc: Exception) -> JSONResponse:
        if is_out_of_range(exc):
            return await _out_of_range(request, exc)
        if "cannot contain NUL" in str(exc):
            # psycopg refuses NUL in text before sending it: a text field the schema let through.
            log.warning("NUL character in a text parameter reached the database")
            return JSONResponse({"detail": "Text must not contain NUL characters"}, status_code=422)
        raise exc

    from sqlalchemy.exc import DataError, StatementError

    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(StatementError, _data_error)


OUT_OF_RANGE = "A number in the request is out of range"


def is_out_of_range(exc: BaseException) -> bool:
    """True for 'integer out of range' from either database (possibly wrapped by SQLAlchemy)."""
    if isinstance(exc, OverflowError):
        return True
    orig = getattr(exc, "orig", None)
    if isinstance(orig, OverflowError):
        return True
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate == "22003"  # numeric_value_out_of_range (PostgreSQL)
