"""Structured logs: one JSON object per line, carrying the session and run being worked on.

`configure_logging(level)` sends every logger's records to stderr as
`{"time", "level", "logger", "message", "session_id"?, "run_id"?, "exception"?}`. The ids come
from `log_context(session_id=..., run_id=...)`, held in contextvars: an asyncio task started
inside the block inherits them, so a run's background task logs its ids without passing them
around. A record's own `extra={"session_id": ...}` wins over the context.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

import msgspec

from agentlog.infra.log_context import _RUN_ID, _SESSION_ID
from agentlog.infra.log_context import log_context as log_context  # its callers import it here

_encoder = msgspec.json.Encoder(enc_hook=str)


def current_context() -> dict[str, str]:
    ids = {"session_id": _SESSION_ID.get(), "run_id": _RUN_ID.get()}
    return {name: value for name, value in ids.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(current_context())
        for name in ("session_id", "run_id"):
            given = getattr(record, name, None)
            if given is not None:
                entry[name] = given
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encoder.encode(entry).decode()


def configure_logging(level: int | str = logging.INFO, *, stream: IO[str] | None = None) -> None:
    """Every record, from every logger (aiohttp's too), as JSON lines on `stream` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
