"""Formatting helpers turning API values into display strings (no value is ever invented)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any


def text(value: Any) -> str:
    return "" if value is None else str(value)


def number(value: Any, places: int = 3) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):.{places}f}"
    except (TypeError, ValueError):
        return str(value)


def tokens(value: Any) -> str:
    """A decimal-string amount shown as is (the API's exact decimal), trimmed of trailing zeros."""
    if value is None or value == "":
        return "—"
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    s = format(d.normalize(), "f") if d != 0 else "0"
    return s


def when(value: Any) -> str:
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value)


def age(seconds: Any) -> str:
    if seconds is None or seconds == "":
        return "—"
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"
