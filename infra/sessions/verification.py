"""`agentlog verify`: read the log through the store's port and check its invariants.

The checks themselves are agentlog.projections.verification's pure `verify_session`; this module
only
reads, in an order that stays correct while servers keep appending:
- the whole log's positions are checked dense up to the last position read at the start,
  except for as many as deleted sessions' tombstones say were removed;
- each session's head is read before its events, and only events up to that head are checked,
  so an append landing meanwhile is not half-read;
- stored projection rows (when a reader is given) are read before the head, so they can only
  be behind it, never legitimately ahead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agentlog.domain.errors import UnknownSession
from agentlog.domain.events import RecordedEvent, SessionDeleted
from agentlog.domain.ports.event_store import EventStore
from agentlog.infra.store.backend import Backend
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.ui_messages import ConversationState
from agentlog.projections.verification import Problem, verify_session

PAGE = 5000

StoredRows = tuple[ConversationState | None, SessionSummary | None]
ReadStored = Callable[[str], Awaitable[StoredRows]]


@dataclass
class VerifyReport:
    sessions: int = 0
    events: int = 0
    last_position: int = 0
    problems: list[Problem] = field(default_factory=list)
    sessions_with_problems: set[str] = field(default_factory=set)

    def add(self, problems: list[Problem]) -> None:
        self.problems += problems
        self.sessions_with_problems.update(p.session_id for p in problems if p.session_id)


async def verify_log(
    store: EventStore,
    session_id: str | None = None,
    *,
    read_stored: ReadStored | None = None,
    on_problem: Callable[[Problem], None] | None = None,
) -> VerifyReport:
    """Check one session, or every session and the global positions. Raises UnknownSession
    for a `session_id` the log knows nothing of. `on_problem` sees each problem as found."""
    report = VerifyReport()

    def found(problems: list[Problem]) -> None:
        report.add(problems)
        if on_problem is not None:
            for problem in problems:
                on_problem(problem)

    if session_id is not None:
        await _verify_one(store, session_id, read_stored, report, found, must_exist=True)
        return report

    report.last_position = await store.last_position()
    backend: Backend | None = getattr(store, "backend", None)
    # Partial imports (a fork that failed between its batches) removed their events: as many
    # gaps, counted like a tombstone's. One in progress is no session yet.
    removed = await backend.positions_removed_by_imports() if backend is not None else 0
    seen = await _verify_positions(store, report.last_position, found, removed)
    if backend is not None and seen:
        for importing in await backend.importing_sessions(list(seen)):
            seen.pop(importing, None)
    after: str | None = None
    while page := await store.sessions(after=after, limit=500):
        for head in page:
            seen.pop(head.session_id, None)
            await _verify_one(store, head.session_id, read_stored, report, found)
        after = page[-1].session_id
    # Both are written in one transaction: events without a row are a broken log.
    for orphan, count in sorted(seen.items()):
        found(
            [
                Problem(
                    session_id=orphan,
                    check="head",
                    message=f"{count} events in the log but no row in the sessions table",
                )
            ]
        )
        await _verify_one(store, orphan, read_stored, report, found, row_missing=True)
    return report


async def _verify_positions(
    store: EventStore,
    last_position: int,
    found: Callable[[list[Problem]], None],
    removed: int = 0,
) -> dict[str, int]:
    """Positions dense from 1 to `last_position` but for the `removed` events of partial
    imports and those deleted sessions' tombstones say were removed; returns event counts by
    session."""
    seen: dict[str, int] = {}
    gaps: list[Problem] = []
    missing = 0
    expected = 1
    after = 0
    while after < last_position:
        page = await store.read_all(after=after, limit=min(PAGE, last_position - after))
        if not page:
            break
        for recorded in page:
            if recorded.position > expected:
                gaps.append(_positions_missing(expected, recorded.position - 1, last_position))
                missing += recorded.position - expected
            expected = recorded.position + 1
            seen[recorded.session_id] = seen.get(recorded.session_id, 0) + 1
            if isinstance(recorded.event, SessionDeleted):
                removed += recorded.event.events_removed
        after = page[-1].position
    if expected <= last_position:
        gaps.append(_positions_missing(expected, last_position, last_position))
        missing += last_position - expected + 1
    if missing != removed:  # deleting sessions leaves exactly as many gaps as it removed
        found(gaps)
    return seen


def _positions_missing(first: int, last: int, head: int) -> Problem:
    what = f"position {first}" if first == last else f"positions {first}-{last}"
    return Problem(
        session_id=None, check="positions", seq=None, message=f"{what} missing (last {head})"
    )


async def _verify_one(
    store: EventStore,
    session_id: str,
    read_stored: ReadStored | None,
    report: VerifyReport,
    found: Callable[[list[Problem]], None],
    *,
    must_exist: bool = False,
    row_missing: bool = False,
) -> None:
    stored_state, stored_summary = (
        await read_stored(session_id) if read_stored is not None else (None, None)
    )
    row = None if row_missing else await store.session(session_id)
    if row is None:
        events = await _read_upto(store, session_id, None)
        if not events:
            raise UnknownSession(session_id)
        if must_exist:
            found(
                [
                    Problem(
                        session_id=session_id,
                        check="head",
                        message=f"{len(events)} events in the log but no row in the sessions table",
                    )
                ]
            )
        recorded_head = None
    else:
        # The head is the session's newest event when it was read; events past it are
        # appends that landed since, left for the next verify.
        recorded_head = row.head
        events = await _read_upto(store, session_id, row.head)
    report.sessions += 1
    report.events += len(events)
    found(
        verify_session(
            events,
            stored_state,
            session_id=session_id,
            recorded_head=recorded_head,
            stored_summary=stored_summary,
        )
    )


async def _read_upto(store: EventStore, session_id: str, head: int | None) -> list[RecordedEvent]:
    """The session's events with seq <= `head` (all of them when None)."""
    events: list[RecordedEvent] = []
    after = 0
    while head is None or after < head:
        limit = PAGE if head is None else min(PAGE, head - after)
        page = await store.read(session_id, after=after, limit=limit)
        if not page:
            break
        if head is not None and page[-1].seq > head:  # a gap below the head pulled it in
            events += [r for r in page if r.seq <= head]
            break
        events += page
        after = page[-1].seq
    return events
