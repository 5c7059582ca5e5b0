"""Log lines: an ISO 8601 UTC timestamp on each, text or one JSON object per line
(`LOG_FORMAT`), and the id of the request being served on every line written while serving it.

Values worth searching by (request_id, correlation_id, status...) are passed as `extra` fields:
the text format appends them as `name=value`, the JSON format as keys of the line's object.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")
# What a client may send as X-Request-Id; anything else is replaced by an id of ours.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Attributes every LogRecord has: whatever else a record carries came in through `extra`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message", "request_id"}
)


@dataclass(slots=True)
class RequestInfo:
    """The request being served: its id, and what its access line will say."""

    request_id: str
    # Filled in while the request runs (the GraphQL operation's name, type, tenant, outcome...).
    fields: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[RequestInfo | None] = ContextVar("profile360_request", default=None)


def current_request() -> RequestInfo | None:
    return _current.get()


def bind_request(info: RequestInfo | None) -> Any:
    """Make `info` the current request (for this task and those it starts); returns a token."""
    return _current.set(info)


def unbind_request(token: Any) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return secrets.token_hex(8)


def request_id_from(header: str | None) -> str:
    """The client's id when it is well-formed (1–128 of A-Z a-z 0-9 . _ -), else a new one."""
    if header is not None and REQUEST_ID.fullmatch(header):
        return header
    return new_request_id()


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            info = _current.get()
            record.request_id = info.request_id if info is not None else None
        return True


def stamp_request_ids() -> None:
    """Make every log record carry the current request's id as `request_id`, whichever
    handler writes it (ours, pytest's, an operator's). Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "stamps_request_ids", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        info = _current.get()
        record.request_id = info.request_id if info is not None else None
        return record

    factory.stamps_request_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    found = {k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None}
    request_id = getattr(record, "request_id", None)
    if request_id is not None:
        found["request_id"] = request_id
    return found


def _text_value(value: Any) -> str:
    if isinstance(value, str) and value and not re.search(r'[\s="]', value):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-11-23T19:20:01.123Z INFO logger: message name=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={_text_value(v)}" for k, v in _extras(record).items())
        if extras:
            line += " " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the extra fields, and the
    exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_extras(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server: every logger (uvicorn's included) writes
    through one handler on stderr, in `log_format`. uvicorn applies it in every worker."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": RequestIdFilter}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["request"],
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's own lines go to the root handler; its access log is replaced by ours
            # (profile360.requests), which never holds a query string.
            "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }
