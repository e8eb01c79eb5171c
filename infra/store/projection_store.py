"""Where the projections' rows live: per-message UI state, session summaries, one checkpoint.

Both backends keep four tables beside the log (same SQLite file, same PostgreSQL schema):
- `agentlog_ui_states` (generation, session_id, last_seq, state, message_count): the session's
  `ConversationState` without its messages (the header: `last_seq`, `open_run_id`) as msgspec
  JSON, and how many messages it has. A row whose `message_count` is NULL was written before
  messages had rows of their own and holds the whole state; opening the store splits it.
- `agentlog_ui_messages` (generation, session_id, position, message_id, message): one row per
  message of the conversation, in order from 0; `message_id` finds a page's cursor. Why rows
  per message: a session's conversation grows without bound, and an append changes one
  message or two (the run's, a new one), so the projector writes only those
  (agentlog.projections.ui_messages.changes) and GET /messages reads only its page; a whole
  state per session made the projector's work per append grow with the session (issue 21).
- `agentlog_session_summaries` (generation, session_id, title, status, head, created_at,
  last_activity_at, runs, tool_calls, active_run_id, active_run_agent, usage, run_marks, agent):
  one `SessionSummary` per row (`usage` and `run_marks` as JSON); `head` is the row's own
  checkpoint, as in agentlog.projections.sessions;
- `agentlog_projection_checkpoints` (name -> position, generation, revision, next_generation):
  the global position both projections reached, which generation of rows is live, and a
  revision that every write to the live rows bumps.

Why generations: a full rebuild writes a new generation beside the live one and makes it live
by changing one number in the checkpoint row, so a reader, which only ever reads the live
generation, sees either the old rows or the finished new ones, never a half-built table.

Why a revision: every write to the live rows is conditional on the revision it started from,
in the same transaction as the rows, so two writers (two server processes, a projector and a
rebuild) can never interleave; the loser writes nothing and starts again from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from agentlog.projections.sessions import SessionSummary
from agentlog.projections.ui_messages import (
    EVERYTHING,
    ConversationState,
    Message,
    MessageChanges,
)
from agentlog.projections.usage import NONE, Usage

PROJECTOR_NAME = "projections"

States = dict[str, ConversationState]
Summaries = dict[str, SessionSummary]
# Per session in `States`: which of its messages to write (absent: all of them).
Changes = dict[str, MessageChanges]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(ConversationState)


def encode_state(state: ConversationState) -> bytes:
    return _encoder.encode(state)


def decode_state(data: bytes) -> ConversationState:
    return _state_decoder.decode(data)


_message_decoder = msgspec.json.Decoder(Message)


def encode_header(state: ConversationState) -> bytes:
    """The state without its messages: what `agentlog_ui_states.state` holds."""
    return _encoder.encode(msgspec.structs.replace(state, messages=()))


def encode_message(message: Message) -> bytes:
    return _encoder.encode(message)


def decode_message(data: bytes) -> Message:
    return _message_decoder.decode(data)


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One session's rows to write: its header, the messages that changed, and where the
    conversation ends now (rows from `truncate_at` on go, when it got shorter)."""

    session_id: str
    last_seq: int
    header: bytes
    message_count: int
    truncate_at: int | None
    messages: list[tuple[int, str, bytes]]  # (position, message id, message)


def state_writes(
    states: Mapping[str, ConversationState],
    changes: Changes,
    hidden: Mapping[str, int] | None = None,
) -> list[StateWrite]:
    """What writing these states takes, only the changed messages encoded. `hidden`: of a
    state that holds only its newest messages, how many older ones it leaves out (its
    positions and changes are the window's; such a state never got shorter)."""
    writes = []
    for session_id, state in states.items():
        changed = changes.get(session_id, EVERYTHING)
        messages = state.messages
        offset = 0 if hidden is None else hidden.get(session_id, 0)
        assert not (offset and changed.shrunk), "a window never gets shorter"
        writes.append(
            StateWrite(
                session_id=session_id,
                last_seq=state.last_seq,
                header=encode_header(state),
                message_count=offset + len(messages),
                truncate_at=offset + len(messages) if changed.shrunk else None,
                messages=[
                    (offset + p, messages[p].id, encode_message(messages[p]))
                    for p in changed.positions(len(messages))
                ],
            )
        )
    return writes


def joined_state(header: bytes, messages: Sequence[bytes]) -> ConversationState:
    """A state read back from its header row and its message rows (in position order)."""
    state = decode_state(header)
    if not messages:
        return state
    return msgspec.structs.replace(state, messages=tuple(decode_message(m) for m in messages))


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A page of a session's stored conversation: `state` holds only the page's messages,
    which start at `start` in the whole conversation."""

    state: ConversationState
    start: int


_usage_decoder = msgspec.json.Decoder(Usage)

# Columns added to `agentlog_session_summaries` after its first layout: a migration adds each
# one that is missing (rows written before hold NULL: no usage counted until a rebuild).
SUMMARY_COLUMNS_ADDED = (
    ("active_run_agent", "text"),
    ("usage", "text"),
    ("run_marks", "text"),
    ("agent", "text"),
)


def encode_usage(usage: Usage) -> str:
    return _encoder.encode(usage).decode()


def decode_usage(text: str | None) -> Usage:
    return NONE if text is None else _usage_decoder.decode(text)


_marks_decoder = msgspec.json.Decoder(tuple[tuple[int, int], ...])


def encode_run_marks(marks: tuple[tuple[int, int], ...]) -> str:
    """The summary's run marks as JSON (see agentlog.projections.sessions: what a rewind takes
    off)."""
    return _encoder.encode(marks).decode()


def decode_run_marks(text: str | None) -> tuple[tuple[int, int], ...]:
    return () if text is None else _marks_decoder.decode(text)


# The summary table's columns after `generation`, in the order of `summary_values`.
SUMMARY_COLUMNS = (
    "session_id, title, status, head, created_at, last_activity_at, runs, tool_calls, "
    "active_run_id, active_run_agent, usage, run_marks, agent"
)


def _unchanged(value: Any) -> Any:
    return value


def summary_values(
    s: SessionSummary,
    *,
    log_text: Callable[[str | None], Any] = _unchanged,
    moment: Callable[[datetime], Any] = _unchanged,
) -> tuple[Any, ...]:
    """A summary as its row (SUMMARY_COLUMNS), with the backend's own columns for text that
    comes from the log (the title, the agent's name: any text) and for moments."""
    return (
        s.session_id,
        log_text(s.title),
        s.status,
        s.head,
        moment(s.created_at),
        moment(s.last_activity_at),
        s.runs,
        s.tool_calls,
        s.active_run_id,
        s.active_run_agent,
        encode_usage(s.usage),
        encode_run_marks(s.run_marks),
        log_text(s.agent),
    )


def summary_from_row(
    row: Sequence[Any],
    *,
    log_text: Callable[[Any], str | None] = _unchanged,
    moment: Callable[[Any], datetime] = _unchanged,
) -> SessionSummary:
    """A summary read back from its row (SUMMARY_COLUMNS), the inverse of `summary_values`."""
    return SessionSummary(
        session_id=row[0],
        title=log_text(row[1]),
        status=row[2],
        head=row[3],
        created_at=moment(row[4]),
        last_activity_at=moment(row[5]),
        runs=row[6],
        tool_calls=row[7],
        active_run_id=row[8],
        active_run_agent=row[9],
        usage=decode_usage(row[10]),
        run_marks=decode_run_marks(row[11]),
        agent=log_text(row[12]),
    )


def to_micros(moment: datetime) -> int:
    """Exact integer microseconds (no float on the way), so a time read back is equal."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The checkpoint row: every event up to `position` is folded into `generation`'s rows."""

    position: int
    generation: int
    revision: int


class Claim(Protocol):
    """A turn at writing the live rows, taken from `checkpoint` (see ProjectionStore.claim)."""

    checkpoint: Checkpoint

    async def load(self, session_ids: Sequence[str]) -> tuple[States, Summaries]:
        """The live rows of these sessions (absent ones are left out)."""
        ...

    async def load_newest(
        self, session_ids: Sequence[str], count: int
    ) -> tuple[States, dict[str, int], Summaries]:
        """`load`, each state holding only its `count` newest messages (what a page of
        appends usually touches), and how many older ones each leaves out."""
        ...

    async def save(
        self,
        states: States,
        changes: Changes,
        summaries: Summaries,
        position: int,
        hidden: Mapping[str, int] | None = None,
    ) -> bool:
        """Write the rows and move the checkpoint to `position`, in one transaction: of each
        state its header and the messages `changes` names (all when absent). `hidden`: states
        loaded by `load_newest`, by how many messages they leave out. A row never moves
        backwards (a session whose header is at a later seq keeps all its rows). False, and
        nothing written, when another writer saved since this claim was taken."""
        ...

    async def replace(
        self, session_id: str, state: ConversationState, summary: SessionSummary
    ) -> bool:
        """Overwrite one session's rows (a per-session rebuild), leaving the position; False,
        and nothing written, when another writer saved since this claim was taken."""
        ...

    async def swap(self, generation: int, position: int) -> bool:
        """Make `generation` (built up to `position`) the live one. False, and nothing
        changed, when another writer saved since this claim was taken, or when that would
        move the live position backwards or to an older generation."""
        ...


class ProjectionStore(Protocol):
    """The projections' rows and checkpoint. Contract:
    - every write to the live rows goes through a `Claim` and commits with the checkpoint;
    - readers read the live generation only, each row in one statement;
    - a generation being built is invisible until a claim's `swap` makes it live in one
      transaction, and only if it reached at least the live position (no row goes backwards).
    """

    async def open(self) -> ProjectionStore: ...

    async def close(self) -> None: ...

    async def checkpoint(self) -> Checkpoint: ...

    def claim(self) -> AbstractAsyncContextManager[Claim]:
        """A turn at writing the live rows. PostgreSQL: holds the checkpoint row's lock until
        the claim ends, so projectors in several processes take turns instead of racing.
        SQLite: claims of one process take turns; across processes a claim is optimistic (the
        database's one lock is the appends' too), and the revision check picks the winner."""
        ...

    async def read_state(self, session_id: str) -> ConversationState | None:
        """The whole stored conversation (one snapshot: header and messages agree)."""
        ...

    async def read_named(
        self, session_id: str, message_ids: Sequence[str]
    ) -> tuple[int, list[Message]] | None:
        """The stored messages with these ids (by the message-id index), and the last seq the
        rows hold, in one snapshot. None: no row for the session."""
        ...

    async def read_page(self, session_id: str, limit: int, before: str | None) -> StoredPage | None:
        """The `limit` stored messages just before the one whose id is `before` (the newest
        with it), or the newest `limit`; one snapshot, reading only the page's rows. None: no
        row for the session. Raises UnknownCursor when no stored message has the id `before`."""
        ...

    async def read_summary(self, session_id: str) -> SessionSummary | None: ...

    async def read_summaries(self, after: str | None, limit: int) -> list[SessionSummary]: ...

    # -- rebuilding ---------------------------------------------------------------------------

    async def new_generation(self) -> int:
        """A generation number nobody else was given."""
        ...

    async def load_generation(
        self, generation: int, session_ids: Sequence[str]
    ) -> tuple[States, Summaries]: ...

    async def write_generation(
        self,
        generation: int,
        states: Mapping[str, ConversationState],
        changes: Changes,
        summaries: Summaries,
    ) -> None:
        """Write rows of a generation that is not live yet (one transaction)."""
        ...

    async def drop_generations(self, *, below: int | None = None, only: int | None = None) -> None:
        """Delete the rows of generations below `below`, or of generation `only`."""
        ...
