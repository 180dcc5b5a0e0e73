"""Structured JSON logs carrying the request id, with secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Anything that looks like one of our secrets is masked before it reaches a log line.
_SECRET_RE = re.compile(r"(om_|omr_)[A-Za-z0-9_\-]{8,}|(Bearer\s+)[A-Za-z0-9_\-\.]+|(eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)")


def redact(text: str) -> str:
    return _SECRET_RE.sub(lambda m: (m.group(1) or m.group(2) or "") + "***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key in ("job_id", "worker_id", "status", "path", "method", "duration_ms", "service"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would print query strings; our middleware logs requests instead.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger(service).info("logging configured")
