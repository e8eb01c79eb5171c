"""The rules an append must satisfy, as pure functions the stores call under their write lock."""

from __future__ import annotations

from collections.abc import Sequence

from agentlog.domain.errors import (
    EventTooLarge,
    ExpectedSeqMismatch,
    InvalidAppend,
    SessionAlreadyExists,
    SessionDeleted,
    UnknownSession,
)
from agentlog.domain.events import Event, SessionCreated, encode_event

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
MAX_SESSION_ID_LENGTH = 200


def encode_batch(events: Sequence[Event], max_event_bytes: int) -> list[bytes]:
    """Validate a batch before it reaches any store and return each event's stored JSON."""
    # list and tuple first: the ABC check costs more than the rest of a one-event append.
    if type(events) not in (list, tuple) and (
        isinstance(events, Event) or not isinstance(events, Sequence)
    ):
        raise InvalidAppend("events must be a sequence of events")
    if not events:
        raise InvalidAppend("an append needs at least one event")
    encoded = []
    for event in events:
        if not isinstance(event, Event) or type(event) is Event:
            raise InvalidAppend(f"not an agentlog event: {type(event).__name__}")
        data = encode_event(event)
        if len(data) > max_event_bytes:
            raise EventTooLarge(len(data), max_event_bytes)
        encoded.append(data)
    return encoded


def validate_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not session_id:
        raise InvalidAppend("session id must be a non-empty string")
    if "\x00" in session_id:
        raise InvalidAppend("session id must not contain NUL characters")
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise InvalidAppend(f"session id is longer than {MAX_SESSION_ID_LENGTH} characters")
    return session_id


def validate_idempotency_key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > 200 or "\x00" in key:
        raise InvalidAppend("an idempotency key must be 1 to 200 characters, without NUL")
    return key


def check_append(
    session_id: str,
    head: int | None,
    events: Sequence[Event],
    expected_seq: int | None,
    *,
    deleted: bool = False,
) -> None:
    """Decide whether `events` may be appended to a session whose current head is `head`.

    `head` is None when the session does not exist. A batch that starts with SessionCreated
    creates the session; SessionCreated anywhere else is refused. `deleted`: the session's
    newest event is its tombstone, after which nothing is ever appended (SessionDeleted).
    Raises, never writes.
    """
    creates = type(events[0]) is SessionCreated
    if len(events) > 1 and any(type(e) is SessionCreated for e in events[1:]):
        raise InvalidAppend("session_created may only be the first event of a session")
    if creates:
        if head is not None:
            raise SessionAlreadyExists(session_id)
        if expected_seq not in (None, 0):
            raise ExpectedSeqMismatch(session_id, expected_seq, 0)
        return
    if head is None:
        raise UnknownSession(session_id)
    if deleted:
        raise SessionDeleted(session_id)
    if expected_seq is not None and expected_seq != head:
        raise ExpectedSeqMismatch(session_id, expected_seq, head)
