"""The session and run a piece of work belongs to, for log records (contextvars: an asyncio
task started inside `log_context` inherits the ids). agentlog.transport.logging_setup renders
them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_SESSION_ID: ContextVar[str | None] = ContextVar("agentlog_session_id", default=None)
_RUN_ID: ContextVar[str | None] = ContextVar("agentlog_run_id", default=None)


@contextmanager
def log_context(*, session_id: str | None = None, run_id: str | None = None) -> Iterator[None]:
    """Log records inside the block carry these ids (those given; the others are kept)."""
    tokens = []
    if session_id is not None:
        tokens.append((_SESSION_ID, _SESSION_ID.set(session_id)))
    if run_id is not None:
        tokens.append((_RUN_ID, _RUN_ID.set(run_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
