"""Forking a session: the source's branch up to a seq becomes a new session, on any backend.

`fork_session(store, source, at_seq, new_id, cwd=...)` (what is copied and which fork points
are refused: `agentlog.domain.rules.forking`):
1. reads the source's events up to `at_seq` (the log is append-only: they cannot change), and
   refuses a deleted source (SessionDeleted), an unknown one (UnknownSession) or a bad fork
   point, before anything is written;
2. writes the fork's whole log, the copies and `session_forked`, as one new session in one
   transaction through the import path (`agentlog.infra.sessions.importing.import_session`): the
   same
   locking as an append, times kept as the source recorded them, the run index filled in the
   same transaction. The projector then sees the fork's events as new events, as for an
   import. A taken id (or a deleted session's) is SessionAlreadyExists: nothing is written;
3. copies the files the copied `run_started` events name (agentlog.infra.store.attachments)
   into the fork, and writes the fork's agent transcript
(`agentlog.infra.agent.transcripts.branching.write_branch_transcript`:
   the CLI's own lines of the turns up to the fork point, copied from the source's transcript,
   or converted from the events where they cannot be cut), bound to the fork, so deleting the
   fork removes it and deleting the source does not.

A crash between 2 and 3 leaves a fork without its transcript: it is refused with
ForkIncomplete, and repeating the same request (same source, `at_seq` and `id`) completes it:
a request whose fork already exists answers that fork (`repeated`) and writes the transcript
only if it is missing. The transcript's entries have stable uuids (the store's idempotency
keys), so a retry never doubles one. The source's working directory is not copied: it is one
host's scratch space, not part of the log.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec.structs import replace

from agentlog.domain.errors import (
    AgentlogError,
    ForkPointOutOfRange,
    SessionAlreadyExists,
    SessionDeleted,
)
from agentlog.domain.events import (
    RecordedEvent,
    RunStarted,
    SessionForked,
    encode_event,
    type_of,
    utc_now,
)
from agentlog.domain.rules.branches import current_branch
from agentlog.domain.rules.forking import check_fork_point, fork_overrides
from agentlog.domain.rules.open_work import OpenWork
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.agent.transcripts.branching import (
    fork_agent_session,
    previous_agent_session,
    write_branch_transcript,
)
from agentlog.infra.sessions.importing import import_session
from agentlog.infra.sessions.tombstone import deleted_at
from agentlog.infra.store.imported_session import ImportedEvent, ImportedSession
from agentlog.infra.store.store import Store

log = logging.getLogger(__name__)

# Events read (and decoded, on the event loop) per page: small enough that one page holds the
# loop for milliseconds, not a tenth of a second.
_PAGE = 1000
_as_dict = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.Encoder().encode


class SessionIdRetired(SessionAlreadyExists):
    """The id belonged to a session that was deleted: it is never given out again."""

    def __init__(self, session_id: str) -> None:
        AgentlogError.__init__(
            self, f"session {session_id!r} was deleted; its id is never used again"
        )
        self.session_id = session_id


class ForkIncomplete(AgentlogError):
    """The fork's log was written but its agent transcript was not: repeat the request."""

    code = "fork_incomplete"
    http_status = 503

    def __init__(self, session_id: str, why: BaseException) -> None:
        super().__init__(
            f"session {session_id!r} was created but its agent transcript could not be "
            f'written ({type(why).__name__}); repeat the fork with "id": {session_id!r} '
            "to complete it"
        )
        self.session_id = session_id
        self.details = {"session_id": session_id}


@dataclass(frozen=True, slots=True)
class Fork:
    session_id: str
    from_session_id: str
    at_seq: int
    copied: int  # events copied: the fork's seqs 1..copied; session_forked is copied + 1
    agent_session: str
    transcript_entries: int
    repeated: bool  # an earlier identical request had made it


async def fork_session(
    store: Store,
    source_id: str,
    at_seq: int,
    new_id: str,
    *,
    cwd: str,
    session_store: LogSessionStore | None = None,
) -> Fork:
    """Fork `source_id` at `at_seq` as `new_id` (see the module docstring). `cwd`: the fork's
    working directory, as its runs will see it (it is in the transcript's lines)."""
    when = await deleted_at(store, source_id)
    if when is not None:
        raise SessionDeleted(source_id, when.isoformat())
    head = await store.head(source_id)  # UnknownSession
    if not 1 <= at_seq <= head:
        raise ForkPointOutOfRange(source_id, at_seq, head)
    stored = await _read_up_to(store, source_id, at_seq)
    # The folds and the copy are CPU work in proportion to the session (a few tenths of a
    # second for 60,000 events): on the event loop, a page at a time with a yield between
    # pages. In a thread they held the loop longer: the loop waited for the GIL behind them.
    branch = current_branch(r for r, _ in stored)
    work = OpenWork()
    for start in range(0, len(branch), _PAGE):
        for recorded in branch[start : start + _PAGE]:
            work.apply(recorded)
        await asyncio.sleep(0)
    ended: int | None = None
    if work.open_run_id is not None:  # refused below; where it ended is the error's advice
        indexed = await store.run(source_id, work.open_run_id)
        ended = indexed.ended_seq if indexed is not None else None
    check_fork_point(source_id, at_seq, head, branch, lambda _run: ended, work)

    agent_session = fork_agent_session(new_id)
    session = await _fork_log(
        source_id, at_seq, new_id, branch, [state for _, state in stored], agent_session
    )
    del stored  # a 60,000-event session's copy is not kept for the transcript's sake
    copied = len(branch)
    repeated = False
    try:
        await import_session(store, session)
    except SessionAlreadyExists:
        if not await _made_by_same_request(store, new_id, copied, source_id, at_seq):
            if await deleted_at(store, new_id) is not None:
                raise SessionIdRetired(new_id) from None
            raise
        repeated = True
    # The files the copied turns name, copied too (a repeated request copies only what a
    # crash left out), so deleting the source leaves the fork's.
    named = [f.sha256 for r in branch if isinstance(r.event, RunStarted) for f in r.event.files]
    if named:
        await store.backend.attachments().copy(source_id, new_id, named)

    session_store = session_store if session_store is not None else LogSessionStore(store)
    entries = 0
    try:
        key = {"project_key": RUNNER_PROJECT_KEY, "session_id": agent_session}
        if not repeated or await session_store.load(key) is None:  # type: ignore[arg-type]
            branch_events = await _as_recorded(session, copied)
            source_agent_session = previous_agent_session(
                branch, at_seq + 1, agent_session, source_id
            )
            entries = await write_branch_transcript(
                session_store,
                session_id=new_id,
                agent_session=agent_session,
                branch_events=branch_events,
                cwd=cwd,
                # The source's own lines of the turns up to the fork point, where they cut.
                source_agent_session=source_agent_session,
                source_session_id=source_id,
            )
    except Exception as exc:
        log.warning("fork %s of %s: transcript not written: %r", new_id, source_id, exc)
        raise ForkIncomplete(new_id, exc) from exc
    return Fork(
        session_id=new_id,
        from_session_id=source_id,
        at_seq=at_seq,
        copied=copied,
        agent_session=agent_session,
        transcript_entries=entries,
        repeated=repeated,
    )


async def _read_up_to(
    store: Store, session_id: str, at_seq: int
) -> list[tuple[RecordedEvent, bytes]]:
    """The source's events 1..at_seq, each with its stored JSON (kept byte for byte). Raises
    SessionDeleted when they are gone: the source was deleted since its head was read."""
    events: list[tuple[RecordedEvent, bytes]] = []
    after = 0
    while after < at_seq:
        page = await store.read_stored(session_id, after=after, limit=min(_PAGE, at_seq - after))
        page = [(r, s) for r, s in page if r.seq <= at_seq]
        if not page:
            break
        events += page
        after = page[-1][0].seq
    if [r.seq for r, _ in events] != list(range(1, at_seq + 1)):
        when = await deleted_at(store, session_id)
        raise SessionDeleted(session_id, when.isoformat() if when is not None else None)
    return events


async def _as_recorded(session: ImportedSession, copied: int) -> list[RecordedEvent]:
    """The fork's copied events as the log holds them (positions aside), a page at a time."""
    recorded: list[RecordedEvent] = []
    for start in range(0, copied, _PAGE):
        recorded += [
            RecordedEvent(
                session_id=session.session_id, seq=e.seq, position=e.seq, time=e.time, event=e.event
            )
            for e in session.events[start : min(start + _PAGE, copied)]
        ]
        await asyncio.sleep(0)
    return recorded


async def _fork_log(
    source_id: str,
    at_seq: int,
    new_id: str,
    branch: list[RecordedEvent],
    states: list[bytes],
    agent_session: str,
) -> ImportedSession:
    """The fork's log: the branch renumbered 1..k with the fork's own fields, then
    `session_forked`; built a page at a time, yielding the loop between pages. `states[i]` is
    the stored JSON of the source's seq i + 1."""
    copied_from: list[int] = []  # source seqs of the events copied so far, in order

    def new_seq_of(source_seq: int) -> int:
        return bisect.bisect_right(copied_from, source_seq)

    events: list[ImportedEvent] = []
    for index, recorded in enumerate(branch):
        if index % _PAGE == _PAGE - 1:
            await asyncio.sleep(0)
        event = recorded.event
        overrides = fork_overrides(event, agent_session=agent_session, new_seq_of=new_seq_of)
        state = states[recorded.seq - 1]
        if overrides:
            # On the stored JSON too, so fields this version does not know are kept.
            fields = _as_dict.decode(state)
            fields.update(overrides)
            state = _encode(fields)
            event = replace(event, **overrides)
        copied_from.append(recorded.seq)
        events.append(
            ImportedEvent(
                seq=len(events) + 1,
                time=recorded.time,
                type=recorded.type,
                run_id=event.run_id,
                state=state,
                event=event,
            )
        )
    forked = SessionForked(from_session_id=source_id, at_seq=at_seq, agent_session=agent_session)
    events.append(
        ImportedEvent(
            seq=len(events) + 1,
            time=utc_now(),
            type=type_of(forked),
            run_id=None,
            state=encode_event(forked),
            event=forked,
        )
    )
    return ImportedSession(session_id=new_id, events=events)


async def _made_by_same_request(
    store: Store, new_id: str, copied: int, source_id: str, at_seq: int
) -> bool:
    """True if `new_id` is the fork of `source_id` at `at_seq` (an earlier identical request)."""
    found = await store.read(new_id, after=copied, limit=1)
    if not found or found[0].seq != copied + 1:
        return False
    event = found[0].event
    return (
        isinstance(event, SessionForked)
        and event.from_session_id == source_id
        and event.at_seq == at_seq
    )
