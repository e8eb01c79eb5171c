"""Writing an imported (or forked) session in bounded batches, on any backend.

A session of 60,000 events written in one transaction holds the log's one write lock (SQLite's
writer, PostgreSQL's `agentlog_log_head` row) for work in proportion to the session, and every
other session's append waits for all of it. Here each batch is a transaction of its own that
takes the lock as an append does, numbers its rows from the log's last position, and commits:
an unrelated append waits for one batch at most, and positions stay dense and commit-ordered
(a batch is, to a reader tailing the global feed, just another append).

The session stays invisible until its last batch commits: a row in `agentlog_imports` names it
while it is written, and its `agentlog_sessions` row, its run index and the removal of that
marker are written by the last batch, in one transaction. Until then it is no session: reads
find nothing (404), and an append to its id, even one that would create it, is refused with
SessionImporting (409), in the append's own transaction. Every batch checks that the marker is
still its own and refreshes its heartbeat.

A failure between batches removes what was written (in batches too) and the marker. A process
that dies leaves a marker whose heartbeat stops: the next import of the same id (the retry)
finds it stale after `STALE_SECONDS`, takes it over and removes the leftovers before writing;
`clear_dead_imports` (a sweep) does the same for those nobody retries. The positions a removed
partial leaves empty are recorded, so `agentlog verify` accounts for them.
Global readers (the projector) see a batch's events when it commits, as any append's; a
partial import's removal bumps the projections' revision and removes its rows, as a deletion
does.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agentlog.domain.errors import AgentlogError, SessionAlreadyExists
from agentlog.infra.store.imported_session import ImportedEvent, ImportedSession, ImportRefused

log = logging.getLogger(__name__)

# At most this many rows, and about this many bytes of event JSON, per transaction: a batch
# holds the lock for a few milliseconds.
BATCH_ROWS = 1000
BATCH_BYTES = 4 * 1024 * 1024
# A marker whose heartbeat is older than this belongs to an import whose process died (a live
# one refreshes it with every batch, milliseconds apart).
STALE_SECONDS = 30.0
# Rows removed per transaction when a partial import (or a deleted session) is cleared.
REMOVAL_ROWS = 1000

_TERMINAL = frozenset({"run_finished", "run_failed", "run_cancelled", "run_abandoned"})

# Awaited after each batch but the last commits, with the rows written so far: a test's hook
# to act between batches (an append, an injected failure).
BetweenBatches = Callable[[int], Awaitable[None]]
# One events-table row of an import: (seq, topic, state, run id, time).
ImportRow = tuple[int, str, bytes, str | None, datetime]
# One run-index row: (run id, seq of run_started, seq of its end or None).
RunRow = tuple[str, int, int | None]


class SessionImporting(AgentlogError):
    """The session is being imported or forked: nothing can be appended to it, and it is not
    readable, until its last batch commits."""

    code = "session_importing"
    http_status = 409

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {session_id!r} is being imported or forked; it exists once that ends"
        )
        self.session_id = session_id
        self.details = {"session_id": session_id}


class ImportTakenOver(AgentlogError):
    """Another import took this one's marker over (it had looked dead): this one stops."""

    code = "import_taken_over"
    http_status = 409

    def __init__(self, session_id: str) -> None:
        super().__init__(f"the import of session {session_id!r} was taken over by another")
        self.session_id = session_id
        self.details = {"session_id": session_id}


class BatchedImports(Protocol):
    """What a backend does for `write_in_batches`; each call is one short transaction."""

    async def stale(self, stale_after: float) -> list[str]:
        """The sessions whose marker's heartbeat is older than `stale_after` seconds."""
        ...

    async def begin(self, session_id: str, owner: str, stale_after: float) -> bool:
        """Write the marker, or take over one whose heartbeat is older than `stale_after`
        seconds (True: its leftovers must be removed).
        Raises SessionAlreadyExists, SessionImporting (a live marker), ImportRefused (rows of
        the id without a session or a marker)."""
        ...

    async def write(
        self,
        session_id: str,
        owner: str,
        rows: Sequence[ImportRow],
        last: tuple[datetime, list[RunRow]] | None,
    ) -> int:
        """Append one batch under the log's lock; returns its first position. `last`
        (created_at, the run index) makes it the batch that publishes the session. Raises
        ImportTakenOver."""
        ...

    async def remove_some(self, session_id: str, owner: str) -> int:
        """Remove up to REMOVAL_ROWS of the partial import's rows; returns how many."""
        ...

    async def end(self, session_id: str, owner: str, release: bool, removed: int) -> None:
        """After the removal: drop the partial's other rows (projections), and the marker
        when `release` (not when the import goes on after clearing a dead one's rows); record
        the `removed` events, whose positions are now gaps in the log (`agentlog verify`
        counts them as a deletion's tombstone counts its own)."""
        ...


@dataclass(frozen=True, slots=True)
class Written:
    first_position: int
    last_position: int


def batches(events: Sequence[ImportedEvent]) -> Iterator[Sequence[ImportedEvent]]:
    """The events in runs of at most BATCH_ROWS rows and (but for a single larger event)
    BATCH_BYTES of JSON."""
    start = 0
    while start < len(events):
        end, size = start, 0
        while end < len(events) and end - start < BATCH_ROWS:
            size += len(events[end].state)
            if size > BATCH_BYTES and end > start:
                break
            end += 1
        yield events[start:end]
        start = end


class RunIndex:
    """The run index of a session fed in order, as the stores' SQL fills it from the log: a
    run ends at its first terminal event, or where the next run started (superseded); a run
    id started twice keeps its first start. Fed batch by batch, so no pass over the whole
    session holds the event loop."""

    def __init__(self) -> None:
        self._found: dict[str, list[int | None]] = {}  # run id -> [started, ended]
        self._open: list[list[int | None]] = []

    def feed(self, events: Sequence[ImportedEvent]) -> None:
        for event in events:
            if event.type == "run_started":
                for entry in self._open:
                    entry[1] = event.seq
                self._open = []
                if event.run_id is not None and event.run_id not in self._found:
                    entry = [event.seq, None]
                    self._found[event.run_id] = entry
                    self._open.append(entry)
            elif event.type in _TERMINAL and event.run_id is not None:
                ended = self._found.get(event.run_id)
                if ended is not None and ended in self._open:
                    ended[1] = event.seq
                    self._open.remove(ended)

    def rows(self) -> list[RunRow]:
        return [(run_id, int(s or 0), e) for run_id, (s, e) in self._found.items()]


def run_index(events: Sequence[ImportedEvent]) -> list[RunRow]:
    """The run index of a whole session (RunIndex, fed at once)."""
    index = RunIndex()
    index.feed(events)
    return index.rows()


def _rows(chunk: Sequence[ImportedEvent]) -> list[ImportRow]:
    return [(e.seq, e.type, e.state, e.run_id, e.time) for e in chunk]


async def write_in_batches(
    imports: BatchedImports,
    session: ImportedSession,
    between_batches: BetweenBatches | None = None,
) -> Written:
    """Write `session` batch by batch (see the module docstring); returns the positions of
    its first and last events (not contiguous when other appends committed in between)."""
    sid = session.session_id
    if not session.events:
        raise ImportRefused(f"session {sid!r} has no events to import")
    owner = secrets.token_hex(8)
    if await imports.begin(sid, owner, STALE_SECONDS):
        await remove_partial(imports, sid, owner, release=False)  # a dead import's rows
    runs = RunIndex()
    first = last = 0
    written = 0
    try:
        chunks = batches(session.events)
        chunk = next(chunks)
        while True:
            runs.feed(chunk)
            following = next(chunks, None)
            publish = (session.events[0].time, runs.rows()) if following is None else None
            position = await imports.write(sid, owner, _rows(chunk), publish)
            first = first or position
            last = position + len(chunk) - 1
            written += len(chunk)
            if following is None:
                break
            if between_batches is not None:
                await between_batches(written)
            chunk = following
    except BaseException as exc:
        if isinstance(exc, ImportTakenOver):
            raise  # its rows are the new owner's to remove
        log.warning("import of %s stopped after %d events: %r; removing them", sid, written, exc)
        # Shielded: a cancelled request still leaves nothing behind (a crash leaves the
        # stale marker, for the next import of the id to clear).
        await asyncio.shield(remove_partial(imports, sid, owner))
        raise
    return Written(first, last)


async def remove_partial(
    imports: BatchedImports, session_id: str, owner: str, *, release: bool = True
) -> None:
    """Remove a partial import's rows, a batch per transaction, then (`release`) its marker."""
    removed = 0
    while some := await imports.remove_some(session_id, owner):
        removed += some
        await asyncio.sleep(0)  # other writers get the lock between batches
    await imports.end(session_id, owner, release, removed)


async def clear_dead_imports(imports: BatchedImports) -> list[str]:
    """Remove the partials of imports whose process died (their marker stale), as a retry
    would, for those nobody retries; returns their session ids."""
    cleared: list[str] = []
    for session_id in await imports.stale(STALE_SECONDS):
        owner = secrets.token_hex(8)
        try:
            took_over = await imports.begin(session_id, owner, STALE_SECONDS)
        except (SessionImporting, SessionAlreadyExists, ImportRefused):
            continue  # alive after all, or it finished meanwhile
        if took_over:
            await remove_partial(imports, session_id, owner)
            cleared.append(session_id)
        else:
            # The marker went meanwhile (its import ended) and `begin` wrote ours: release it.
            await imports.end(session_id, owner, True, 0)
    return cleared
