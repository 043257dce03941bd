"""Structured logs: one JSON object per line, an event name per line, the request id bound per request."""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
from typing import Any

import orjson

REQUEST_ID_SCOPE_KEY = "salescast.request_id"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("salescast_request_id", default=None)

# Attributes every LogRecord has; anything else passed through `extra=` is a field of the event.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "at": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            event["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                event[key] = value
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(event, default=str).decode()


class TextFormatter(logging.Formatter):
    """One line for people: time, level, logger, event, then the event's fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{k}={v}" for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")]
        request_id = request_id_var.get()
        if request_id is not None:
            fields.insert(0, f"request_id={request_id}")
        return " ".join([line, *fields]) if fields else line


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Route salescast's and the server's logs through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    for name in ("salescast", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # The access log is ours (one line per request, with the model version); uvicorn's would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
