"""Keeps the projections' rows in step with the log, reads them up to date, and rebuilds them.

- `catch_up` folds the log from the checkpoint in pages; each page's rows and the checkpoint
  commit in one transaction (see agentlog.infra.store.projection_store), so after a crash or a
  restart it
  simply continues from the checkpoint, and an event folded twice changes nothing.
- `run` catches up whenever an append commits (and on a timer, since a wake-up may be lost).
- Reads (`read_messages`, `read_summary`, `list_summaries`) start from the stored rows and fold
  whatever the log holds beyond them, so a reader is never behind the log it could read.
- Rows stored before rewinds existed are folded afresh from the log when their session's
  first `conversation_rewound` comes (`_heal_before_rewinds`, and in `read_messages`).
- `rebuild` replays the log into a new generation beside the live one and swaps it in at the
  position it reached; the projector continues from there, so appends made during the rebuild
  are folded into the new rows and none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import msgspec

from agentlog.domain.errors import StoreUnavailable, UnknownSession
from agentlog.domain.events import (
    ConversationRewound,
    RecordedEvent,
    RunStarted,
    SessionDeleted,
    encode_event,
)
from agentlog.infra.store.byte_bounded import (
    DEFAULT_CACHE_BYTES,
    ByteBoundedLru,
    projector_share,
    rebuild_share,
)
from agentlog.infra.store.projection_store import (
    Changes,
    Checkpoint,
    Claim,
    ProjectionStore,
    States,
    Summaries,
    encode_message,
    encode_state,
)
from agentlog.infra.store.store import Store
from agentlog.projections import sessions, ui_messages
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.ui_messages import (
    EVERYTHING,
    ConversationState,
    Message,
    MessageChanges,
    OutsideWindow,
)
from agentlog.projections.ui_messages.paging import UnknownCursor, page_before

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

_REPLACE_ATTEMPTS = 50
_SWAP_ATTEMPTS = 100


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What a rebuild did: events folded, sessions written, wall time, position reached."""

    events: int
    sessions: int
    seconds: float
    position: int
    session_id: str | None = None
    superseded: bool = False

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "events": self.events,
            "sessions": self.sessions,
            "seconds": round(self.seconds, 3),
            "position": self.position,
        }
        if self.session_id is not None:
            body["session_id"] = self.session_id
        return body


# How many of a session's newest messages the projector reads back when it does not
# remember the session: a page of appends lands in the last message or two (see
# `NeedsWholeStates` for when it needs more).
NEWEST_MESSAGES = 32


class NeedsWholeStates(Exception):
    """A page needs older messages of these sessions than their windows hold (a rewind, the
    tombstone, a new run's start, a late result for an old call): fold them whole."""

    def __init__(self, session_ids: set[str]) -> None:
        super().__init__(f"whole states needed: {sorted(session_ids)}")
        self.session_ids = session_ids


def fold_page(
    events: Iterable[RecordedEvent],
    states: States,
    summaries: Summaries,
    hidden: Mapping[str, int] | None = None,
    new_runs: Mapping[str, frozenset[str]] | None = None,
) -> tuple[Changes, set[str]]:
    """Fold events of any sessions into `states` and `summaries` in place; returns, of each
    state that changed, which messages did, and the ids of the summaries that changed (an
    event already folded changes nothing). `hidden`: states that hold only their newest
    messages, by how many older ones they leave out; raises NeedsWholeStates, having changed
    nothing, when the page needs older ones."""
    by_session: dict[str, list[RecordedEvent]] = {}
    for recorded in events:
        found = by_session.get(recorded.session_id)
        if found is None:
            by_session[recorded.session_id] = [recorded]
        else:
            found.append(recorded)
    folded: dict[str, tuple[ConversationState, ConversationState, MessageChanges]] = {}
    outside: set[str] = set()
    for session_id, batch in by_session.items():
        before = states.get(session_id, ui_messages.EMPTY)
        try:
            after, changes = ui_messages.fold_changes(
                batch,
                before,
                0 if hidden is None else hidden.get(session_id, 0),
                frozenset() if new_runs is None else new_runs.get(session_id, frozenset()),
            )
        except OutsideWindow:
            outside.add(session_id)
            continue
        folded[session_id] = before, after, changes
    if outside:
        raise NeedsWholeStates(outside)
    changed_states: Changes = {}
    changed_summaries: set[str] = set()
    for session_id, batch in by_session.items():
        before, after, changes = folded[session_id]
        if after is not before:
            states[session_id] = after
            changed_states[session_id] = changes
        summary = original = summaries.get(session_id)
        for recorded in batch:
            summary = sessions.apply(summary, recorded)
        if summary is not original:
            assert summary is not None
            summaries[session_id] = summary
            changed_summaries.add(session_id)
    return changed_states, changed_summaries


async def _save_folded(
    claim: Claim,
    events: list[RecordedEvent],
    states: States,
    summaries: Summaries,
    healed: Iterable[str] = (),
    hidden: Mapping[str, int] | None = None,
    new_runs: Mapping[str, frozenset[str]] | None = None,
) -> tuple[bool, Changes]:
    """Fold the page into the rows and save it; whether it saved, and what changed."""
    changed_states, changed_summaries = fold_page(events, states, summaries, hidden, new_runs)
    for session_id in healed:
        # Folded afresh from the log: every message is written, whatever the page changed.
        changed_states[session_id] = EVERYTHING
    position = events[-1].position if events else 0
    if not changed_states and not changed_summaries and position <= claim.checkpoint.position:
        return True, {}  # all of it was folded before: nothing to write, not even the revision
    saved = await claim.save(
        {s: states[s] for s in changed_states},
        changed_states,
        {s: summaries[s] for s in changed_summaries},
        position,
        hidden,
    )
    return saved, changed_states


# What a summary row holds besides its title and run marks: ids, times, counters, usage.
_SUMMARY_BYTES = 512


def rows_bytes(state: ConversationState | None, summary: SessionSummary | None) -> int:
    """An estimate of the memory a session's rows hold: their encoded length."""
    size = 0 if state is None else len(encode_state(state))
    if summary is not None:
        size += _SUMMARY_BYTES + len(summary.title or "") + 16 * len(summary.run_marks)
    return size


def message_bytes_change(
    before: ConversationState, after: ConversationState, changes: MessageChanges
) -> int:
    """How much a fold changed the state's encoded length, from the changed messages only
    (their old and new encodings, and what a rewind took off): O(change), not O(state)."""
    if changes.everything:
        return len(encode_state(after)) - len(encode_state(before))
    old, new = before.messages, after.messages
    change = 0
    for position in changes.positions(len(new)):
        change += len(encode_message(new[position]))
        if position < len(old):
            change -= len(encode_message(old[position]))
    for position in range(len(new), len(old)):
        change -= len(encode_message(old[position]))
    return change


def events_bytes(events: Iterable[RecordedEvent]) -> dict[str, int]:
    """Per session, the encoded length of its events: what folding them can add to its rows
    at most (text deltas join their message; a rewind takes off), so a state's estimate grows
    with the page instead of being encoded again whole."""
    sizes: dict[str, int] = {}
    for recorded in events:
        sid = recorded.session_id
        sizes[sid] = sizes.get(sid, 0) + len(encode_event(recorded.event))
    return sizes


def _legacy_state(state: ConversationState) -> bool:
    """Stored before messages kept the seq that created them (a rewind needs it)."""
    return any(message.seq == 0 for message in state.messages)


def _legacy_summary(summary: SessionSummary) -> bool:
    """Stored before summaries kept their run marks (a rewind needs them)."""
    return summary.runs > 0 and not summary.run_marks


class Projector:
    """The projections of one log: incremental upkeep, up-to-date reads, rebuilds."""

    def __init__(
        self,
        store: Store,
        projections: ProjectionStore,
        *,
        page_size: int = 2_000,
        rebuild_page_size: int = 20_000,
        recheck_seconds: float = 1.0,
        settle_seconds: float = 0.2,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        newest_messages: int = NEWEST_MESSAGES,
    ) -> None:
        self.store = store
        # How many of a session's newest messages a page reads back when the session is not
        # remembered (at least 1: the open run's message is the last one).
        self.newest_messages = max(1, newest_messages)
        self.projections = projections
        self.page_size = page_size
        self.rebuild_page_size = rebuild_page_size
        self.recheck_seconds = recheck_seconds
        # After a wake-up, wait this long so one page (one transaction, one write of each
        # touched session's state) takes a burst of deltas instead of one event each. Readers
        # fold the log beyond the rows themselves, so this delay is never visible to them.
        self.settle_seconds = settle_seconds
        # Both bounded in bytes (`cache_bytes` is the process's whole cache budget,
        # AGENTLOG_CACHE_BYTES): a bound in sessions let a few huge sessions hold the memory
        # of everything ever written to them.
        self.rebuild_cache_bytes = rebuild_share(cache_bytes)
        # Rows as this projector last saved them, valid while the (generation, revision) is
        # still the one its save left: any other writer bumps the revision.
        # A state may hold only its newest messages: the int says how many older ones it
        # leaves out.
        self._rows_cache: ByteBoundedLru[
            str, tuple[ConversationState | None, int, SessionSummary]
        ] = ByteBoundedLru(projector_share(cache_bytes))
        self._rows_cache_token: tuple[int, int] | None = None

    # -- incremental upkeep -----------------------------------------------------------------

    async def catch_up(self) -> int:
        """Fold every event after the checkpoint; returns how many this call folded."""
        folded = 0
        while True:
            page = await self._catch_up_page()
            if page is None:
                return folded
            folded += page

    async def _catch_up_page(self) -> int | None:
        """One page in one transaction; None when the log has nothing after the checkpoint,
        0 when another writer moved the checkpoint first (the caller just goes on)."""
        async with self.projections.claim() as claim:
            events = await self.store.read_all(
                after=claim.checkpoint.position, limit=self.page_size
            )
            if not events:
                return None
            checkpoint = claim.checkpoint
            session_ids = list(dict.fromkeys(e.session_id for e in events))
            states, hidden, summaries, sizes = await self._load(claim, session_ids)
            new_runs = await self._new_runs(events, hidden)
            healed: set[str] = set()
            while True:
                for session_id in await self._heal_before_rewinds(events, states, summaries):
                    healed.add(session_id)
                    hidden[session_id] = 0
                before = dict(states)
                try:
                    # The page starts after the checkpoint, so a save always writes and bumps
                    # the revision by one.
                    saved, changed = await _save_folded(
                        claim, events, states, summaries, healed, hidden, new_runs
                    )
                    break
                except NeedsWholeStates as needs:
                    # Rare (a new run, a rewind, a late result): read these sessions whole.
                    whole, _ = await claim.load(sorted(needs.session_ids))
                    for session_id in needs.session_ids:
                        # Gone meanwhile (deleted): the save's revision check will fail.
                        state = whole.get(session_id, ui_messages.EMPTY)
                        states[session_id], hidden[session_id] = state, 0
                        sizes[session_id] = rows_bytes(state, summaries.get(session_id))
            if saved:
                for session_id, changes in changed.items():
                    sizes[session_id] = sizes.get(session_id, 0) + message_bytes_change(
                        before.get(session_id, ui_messages.EMPTY), states[session_id], changes
                    )
                self._remember(checkpoint, states, hidden, summaries, sizes)
            else:
                self._rows_cache.clear()
            return len(events) if saved else 0

    async def _new_runs(
        self, events: list[RecordedEvent], hidden: Mapping[str, int]
    ) -> dict[str, frozenset[str]]:
        """Of the sessions held as windows, the runs whose first start is in this page (the
        run index says where each run started): a new run's start then needs no whole read,
        since no older message can name it. One index lookup per run start."""
        found: dict[str, set[str]] = {}
        for recorded in events:
            event = recorded.event
            if not isinstance(event, RunStarted) or not hidden.get(recorded.session_id):
                continue
            if event.run_id is None:
                new = True  # named after its own seq: new by construction
            else:
                indexed = await self.store.run(recorded.session_id, event.run_id)
                new = indexed is not None and indexed.started_seq == recorded.seq
            if new:
                run_id = event.run_id or f"run:{recorded.seq}"
                found.setdefault(recorded.session_id, set()).add(run_id)
        return {session_id: frozenset(runs) for session_id, runs in found.items()}

    async def _load(
        self, claim: Claim, session_ids: list[str]
    ) -> tuple[States, dict[str, int], Summaries, dict[str, int]]:
        """The rows of these sessions: from what this projector saved last, while nobody else
        has written since (the revision is still the one our save left), else from the store,
        each state with its newest messages only (NEWEST_MESSAGES). A hot session's state is
        then not read back and decoded for every page, and one read back costs the same in a
        session of any length. Also how many older messages each state leaves out, and each
        row's estimated size (see `rows_bytes`)."""
        checkpoint = claim.checkpoint
        if (checkpoint.generation, checkpoint.revision) != self._rows_cache_token:
            self._rows_cache.clear()
        states: States = {}
        hidden: dict[str, int] = {}
        summaries: Summaries = {}
        sizes: dict[str, int] = {}
        missing = []
        for session_id in session_ids:
            cached = self._rows_cache.get(session_id)
            if cached is None:
                missing.append(session_id)
                continue
            state, left_out, summary = cached
            if state is not None:
                states[session_id], hidden[session_id] = state, left_out
            summaries[session_id] = summary
            sizes[session_id] = self._rows_cache.size_of(session_id)
        if missing:
            loaded_states, loaded_hidden, loaded_summaries = await claim.load_newest(
                missing, self.newest_messages
            )
            states.update(loaded_states)
            hidden.update(loaded_hidden)
            summaries.update(loaded_summaries)
            for session_id in missing:
                sizes[session_id] = rows_bytes(
                    loaded_states.get(session_id), loaded_summaries.get(session_id)
                )
        return states, hidden, summaries, sizes

    def _remember(
        self,
        saved_from: Checkpoint,
        states: States,
        hidden: dict[str, int],
        summaries: Summaries,
        sizes: dict[str, int],
    ) -> None:
        self._rows_cache_token = (saved_from.generation, saved_from.revision + 1)
        large = self._rows_cache.max_bytes // 8
        for session_id, size in sizes.items():
            state, left_out = states.get(session_id), hidden.get(session_id, 0)
            summary = summaries[session_id]
            if (
                state is not None
                and len(state.messages) > 2 * NEWEST_MESSAGES
                and (left_out or size > large)
            ):
                # Remember the newest messages only: a window that grew, or a conversation
                # too large to keep whole, would otherwise crowd out the other sessions.
                kept = state.messages[-NEWEST_MESSAGES:]
                left_out += len(state.messages) - len(kept)
                state = msgspec.structs.replace(state, messages=kept)
                size = rows_bytes(state, summary)
            self._rows_cache.put(session_id, (state, left_out, summary), size)

    async def apply(self, events: list[RecordedEvent]) -> bool:
        """Fold a page of events (from the log, in position order) into the live rows and
        move the checkpoint to its end, never backwards. Events already folded change
        nothing. False when another writer saved first."""
        async with self.projections.claim() as claim:
            session_ids = list(dict.fromkeys(e.session_id for e in events))
            states, summaries = await claim.load(session_ids)
            healed = await self._heal_before_rewinds(events, states, summaries)
            saved, _changed = await _save_folded(claim, events, states, summaries, healed)
            return saved

    async def _heal_before_rewinds(
        self, events: list[RecordedEvent], states: States, summaries: Summaries
    ) -> list[str]:
        """Rows stored before rewinds existed lack what a rewind needs (each message's seq,
        the summary's run marks): for a session whose page holds a rewind, fold them afresh
        from the log up to the page first. Rare (a rewind on such a session, once), and exact."""
        rewound = {
            e.session_id: e.seq
            for e in reversed(events)
            if isinstance(e.event, ConversationRewound)
        }
        healed = []
        for session_id in rewound:
            state, summary = states.get(session_id), summaries.get(session_id)
            if not (
                (state is not None and _legacy_state(state))
                or (summary is not None and _legacy_summary(summary))
            ):
                continue
            first = next(e.seq for e in events if e.session_id == session_id)
            earlier = [e for e in await self._session_events(session_id) if e.seq < first]
            states[session_id] = ui_messages.fold(earlier)
            summary = None
            for recorded in earlier:
                summary = sessions.apply(summary, recorded)
            if summary is not None:
                summaries[session_id] = summary
            healed.append(session_id)
        return healed

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up after every commit, and every `recheck_seconds`, until `stop` is set."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            async with self.store.subscribe_all() as wakeup:
                while not stop.is_set():
                    try:
                        await self.catch_up()
                    except Exception:
                        # A database outage must not end the projector: readers fold the log
                        # beyond the rows anyway, and the next round starts at the checkpoint.
                        log.exception("projector: catch-up failed; retrying")
                    woken = asyncio.ensure_future(wakeup.wait(self.recheck_seconds))
                    await asyncio.wait({woken, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not woken.done():
                        woken.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await woken
                    elif woken.result() and self.settle_seconds:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self.settle_seconds)
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping

    # -- reads, always up to date -----------------------------------------------------------

    async def read_messages(self, session_id: str) -> tuple[ConversationState, int]:
        """The session's conversation folded to its head, and that head (its last seq).
        Raises UnknownSession."""
        if await self._importing([session_id]):
            raise UnknownSession(session_id)  # not a session until its import ends
        state = await self.projections.read_state(session_id) or ui_messages.EMPTY
        while True:
            events = await self.store.read(session_id, after=state.last_seq, limit=self.page_size)
            if _legacy_state(state) and any(
                isinstance(e.event, ConversationRewound) for e in events
            ):
                state = ui_messages.EMPTY  # stored before rewinds existed: fold it afresh
                continue
            state = ui_messages.fold(events, state)
            if len(events) < self.page_size:
                break
        if state.last_seq == 0:
            raise UnknownSession(session_id)
        return state, state.last_seq

    async def read_named(self, session_id: str, message_ids: list[str]) -> list[Message] | None:
        """The messages of the conversation at its head that have these ids, from the
        message-id index; their ids, roles and runs are the head's, their parts may be a
        settle period behind. None when the rows cannot tell: none stored for the session, or
        the log past them (at most a page of it) may add, drop or rename messages with these
        ids (a rewind, the tombstone, a run start naming one of them): fold the whole
        conversation then."""
        if await self._importing([session_id]):
            return None  # the whole read says it is no session yet
        stored = await self.projections.read_named(session_id, message_ids)
        if stored is None:
            return None
        last_seq, messages = stored
        tail = await self.store.read(session_id, after=last_seq, limit=self.page_size)
        if len(tail) == self.page_size:
            return None
        wanted = set(message_ids)
        for recorded in tail:
            event = recorded.event
            if isinstance(event, ConversationRewound | SessionDeleted):
                return None
            if isinstance(event, RunStarted):
                run_id = event.run_id or f"run:{recorded.seq}"
                named = {run_id, event.user_message_id, event.continues_run_id}
                if wanted & named:
                    return None
        return messages

    async def read_page(
        self, session_id: str, limit: int, before: str | None = None
    ) -> tuple[ConversationState, int, str | None]:
        """One page of the conversation at its head (see
        agentlog.projections.ui_messages.paging): a state holding only the page's messages,
        the head, and the cursor of the page before (None: the page starts the conversation).
        Reads only the page's rows while the stored rows are at the head; when the log holds
        more (the projector is a settle period behind), the whole conversation is folded, as
        `read_messages` does. Raises UnknownSession, UnknownCursor."""
        if await self._importing([session_id]):
            raise UnknownSession(session_id)  # not a session until its import ends
        try:
            stored = await self.projections.read_page(session_id, limit, before)
        except UnknownCursor:
            stored = None  # the message may be in the log past the rows: the fold decides
        if stored is not None and not await self.store.read(
            session_id, after=stored.state.last_seq, limit=1
        ):
            older = stored.state.messages[0].id if stored.start > 0 else None
            return stored.state, stored.state.last_seq, older
        # Behind the log (or no rows yet): the whole conversation, folded to its head.
        state, head = await self.read_messages(session_id)
        page, older = page_before(state.messages, limit, before)
        return msgspec.structs.replace(state, messages=tuple(page)), head, older

    async def read_summary(self, session_id: str) -> SessionSummary | None:
        """The session's summary folded to its head; None for an unknown session."""
        if await self._importing([session_id]):
            return None  # not a session until its import ends
        summary = await self.projections.read_summary(session_id)
        while True:
            after = summary.head if summary is not None else 0
            events = await self.store.read(session_id, after=after, limit=self.page_size)
            for recorded in events:
                summary = sessions.apply(summary, recorded)
            if len(events) < self.page_size:
                return summary

    async def list_summaries(
        self, after: str | None = None, limit: int = 100
    ) -> list[SessionSummary]:
        """Summaries of the sessions after `after` in id order, folded to the log's end."""
        # The checkpoint is read before the rows: the rows are then at least as recent as it
        # (positions never go back, not even across a swap), so folding the log after it
        # misses nothing, and events the rows already hold are skipped by the fold.
        position = (await self.projections.checkpoint()).position
        rows = await self.projections.read_summaries(after, limit)
        found: dict[str, SessionSummary | None] = {s.session_id: s for s in rows}
        # With a full page, sessions past its last id are not in this answer at all.
        beyond = rows[-1].session_id if len(rows) == limit else None
        while True:
            events = await self.store.read_all(after=position, limit=self.page_size)
            for recorded in events:
                session_id = recorded.session_id
                if (after is not None and session_id <= after) or (
                    beyond is not None and session_id > beyond
                ):
                    continue
                found[session_id] = sessions.apply(found.get(session_id), recorded)
            if len(events) < self.page_size:
                break
            position = events[-1].position
        hidden = await self._importing(list(found))
        listed = sorted(
            (s for s in found.values() if s is not None and s.session_id not in hidden),
            key=lambda s: s.session_id,
        )
        return listed[:limit]

    async def _importing(self, session_ids: list[str]) -> set[str]:
        """Those of the sessions being imported or forked in batches: their events are in the
        log (and folded), but they are no sessions until the last batch commits
        (agentlog.infra.store.import_batches)."""
        return await self.store.backend.importing_sessions(session_ids) if session_ids else set()

    # -- rebuilds ---------------------------------------------------------------------------

    async def rebuild(
        self, session_id: str | None = None, progress: Progress | None = None
    ) -> RebuildResult:
        """Replay the log into fresh rows: all of them, or one session's (UnknownSession if
        it has no events)."""
        if session_id is not None:
            return await self._rebuild_session(session_id, progress)
        return await self._rebuild_all(progress)

    async def _rebuild_session(self, session_id: str, progress: Progress | None) -> RebuildResult:
        started = time.perf_counter()
        for attempt in range(_REPLACE_ATTEMPTS):
            # The events are read after the claim is taken: the rows written then hold at
            # least what the projector had folded, so the session never goes backwards.
            async with self.projections.claim() as claim:
                events = await self._session_events(session_id)
                if not events:
                    raise UnknownSession(session_id)
                state = ui_messages.fold(events)
                summary = None
                for recorded in events:
                    summary = sessions.apply(summary, recorded)
                assert summary is not None
                if await claim.replace(session_id, state, summary):
                    if progress is not None:
                        progress(len(events), len(events))
                    return RebuildResult(
                        events=len(events),
                        sessions=1,
                        seconds=time.perf_counter() - started,
                        position=claim.checkpoint.position,
                        session_id=session_id,
                    )
            await asyncio.sleep(0.001 * attempt)
        raise StoreUnavailable(f"could not rebuild session {session_id!r}: too many writers")

    async def _session_events(self, session_id: str) -> list[RecordedEvent]:
        events: list[RecordedEvent] = []
        while True:
            after = events[-1].seq if events else 0
            page = await self.store.read(session_id, after=after, limit=self.rebuild_page_size)
            events += page
            if len(page) < self.rebuild_page_size:
                return events

    async def _rebuild_all(self, progress: Progress | None) -> RebuildResult:
        started = time.perf_counter()
        total = await self.store.last_position()
        generation = await self.projections.new_generation()
        build = _GenerationBuild(self.projections, generation, self.rebuild_cache_bytes)
        build.progress, build.total = progress, total
        swapped = superseded = False
        try:
            # Most of the log, holding nothing: the projector keeps the live rows meanwhile.
            await self._fold_to_end(build)
            for attempt in range(_SWAP_ATTEMPTS):
                async with self.projections.claim() as claim:
                    if claim.checkpoint.generation > generation:
                        superseded = True  # a rebuild that started later went live first
                        break
                    # The tail appended since, then the swap. PostgreSQL: the claim holds the
                    # checkpoint row, so the live rows stand still until the swap commits, and
                    # reading to the log's end after taking it passes their position. SQLite:
                    # the swap is refused if the projector saved meanwhile; we go again.
                    await self._fold_to_end(build)
                    await build.flush()
                    swapped = await claim.swap(generation, build.position)
                if swapped:
                    break
                await asyncio.sleep(0.001 * attempt)
            else:
                raise StoreUnavailable("rebuild: the live projection kept moving; try again")
        except BaseException:
            await asyncio.shield(self._discard(generation))
            raise
        if swapped:
            # Earlier generations: the one that was live, and any rebuild that lost.
            await self.projections.drop_generations(below=generation)
        else:
            await self._discard(generation)
        return RebuildResult(
            events=build.folded,
            sessions=len(build.seen),
            seconds=time.perf_counter() - started,
            position=build.position,
            superseded=superseded,
        )

    async def _fold_to_end(self, build: _GenerationBuild) -> None:
        """Fold pages into the build until the log has no more."""
        limit = self.rebuild_page_size
        pending = asyncio.ensure_future(self.store.read_all(after=build.position, limit=limit))
        try:
            while True:
                events = await pending
                if len(events) == limit:
                    # Read the next page while this one folds: the database works meanwhile.
                    pending = asyncio.ensure_future(
                        self.store.read_all(after=events[-1].position, limit=limit)
                    )
                await build.fold(events)
                if len(events) < limit:
                    return
        finally:
            pending.cancel()

    async def _discard(self, generation: int) -> None:
        try:
            await self.projections.drop_generations(only=generation)
        except Exception:
            log.exception(
                "rebuild: could not drop generation %d; the next rebuild will", generation
            )


class _GenerationBuild:
    """A generation being built: states folded in memory, written in bulk.

    States stay in memory until the end (one write per session) unless they are estimated to
    hold more than `max_bytes`; then they are written and forgotten, and read back from the
    new generation's rows when their session shows up again.
    """

    def __init__(self, projections: ProjectionStore, generation: int, max_bytes: int) -> None:
        self.projections = projections
        self.generation = generation
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self.states: States = {}
        self.summaries: Summaries = {}
        self.dirty_states: Changes = {}
        self.dirty_summaries: set[str] = set()
        self.seen: set[str] = set()
        self.position = 0
        self.folded = 0
        self.total = 0
        self.progress: Progress | None = None

    async def fold(self, events: list[RecordedEvent]) -> None:
        if not events:
            return
        # Sessions folded before but forgotten since: their rows are in the new generation.
        missing = {e.session_id for e in events} & self.seen - self.states.keys()
        if missing:
            states, summaries = await self.projections.load_generation(
                self.generation, list(missing)
            )
            self.states.update(states)
            self.summaries.update(summaries)
            for session_id in missing:
                self.held_bytes += rows_bytes(states.get(session_id), summaries.get(session_id))
        changed_states, changed_summaries = fold_page(events, self.states, self.summaries)
        for session_id, changes in changed_states.items():
            earlier = self.dirty_states.get(session_id)
            self.dirty_states[session_id] = changes if earlier is None else earlier.merged(changes)
        self.dirty_summaries |= changed_summaries
        self.seen |= changed_summaries
        self.position = events[-1].position
        self.folded += len(events)
        if self.progress is not None:
            self.progress(self.folded, max(self.total, self.position))
        self.held_bytes += sum(events_bytes(events).values())
        if self.held_bytes > self.max_bytes:
            await self.flush()
            self.states.clear()
            self.summaries.clear()
            self.held_bytes = 0

    async def flush(self) -> None:
        if self.dirty_states or self.dirty_summaries:
            await self.projections.write_generation(
                self.generation,
                {s: self.states[s] for s in self.dirty_states},
                self.dirty_states,
                {s: self.summaries[s] for s in self.dirty_summaries},
            )
            self.dirty_states.clear()
            self.dirty_summaries.clear()
