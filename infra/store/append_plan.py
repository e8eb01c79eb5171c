"""Deciding one group-commit transaction: which appends land, at which seqs and positions.

Both stores call `plan_batch` under their write lock with the heads and idempotency keys they
just read, then write the rows it returns. The rules themselves are
agentlog.domain.rules.appending's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from agentlog.domain.errors import AgentlogError, IdempotencyKeyReused, RunFenced
from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    Event,
    PromptQueued,
    RunStarted,
    SessionCreated,
    SessionDeleted,
    ToolApprovalResponded,
    type_of,
)
from agentlog.domain.ports.event_store import RunRecord
from agentlog.domain.rules.appending import check_append
from agentlog.infra.store.group_commit import Outcome, PendingAppend
from agentlog.infra.store.import_batches import SessionImporting

# One events-table row as the stores send it: (session, seq, topic, run id, length of state).
# The state bytes travel separately (`BatchPlan.states`, same order); the row's global
# position is `BatchPlan.first_position` plus its index plus one.
EventRow = tuple[str, int, str, str | None, int]
# What the store remembers of an idempotency key: the seqs it got and its request's hash.
KnownKey = tuple[list[int], str | None]
# Event types that change the run index.
_RUN_INDEXED = frozenset({RunStarted, *RUN_TERMINAL_TYPES})
# Event types that owe the session a look for its next turn once no run holds it (an answered
# approval's continuation, a queued prompt's turn): each marks the session in the turns-due
# index, in the same transaction, so a look skipped by a crash or a shutdown is still owed.
_TURN_DUE = frozenset({ToolApprovalResponded, PromptQueued})
# What the locked path must see: it reads the run index and writes both indexes.
_LOCKED = _RUN_INDEXED | _TURN_DUE


def needs_run_index(batch: list[PendingAppend]) -> bool:
    """Whether planning `batch` needs the sessions' current runs (it is fenced), or writing it
    changes the run index (it starts or ends a run)."""
    for pending in batch:
        if pending.fence is not None:
            return True
        for event in pending.events:
            if type(event) in _LOCKED:
                return True
    return False


@dataclass(slots=True)
class BatchPlan:
    first_position: int
    position: int
    heads: dict[str, int | None]
    outcomes: list[Outcome] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    # Sessions this transaction creates: the only writes to the sessions table.
    created: list[str] = field(default_factory=list)
    rows: list[EventRow] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    # (session, key, seqs, request hash) to remember, for appends that carried a key.
    new_keys: list[tuple[str, str, list[int], str | None]] = field(default_factory=list)
    # The run index: (session, run id, seq of run_started) and (session, run id, seq of its end).
    run_starts: list[tuple[str, str, int]] = field(default_factory=list)
    run_ends: list[tuple[str, str, int]] = field(default_factory=list)
    # The turns-due index: (session, seq of the newest event that owes it a look).
    turns_due: list[tuple[str, int]] = field(default_factory=list)
    # Sessions whose tombstone this transaction appends: their heads are never remembered.
    tombstoned: set[str] = field(default_factory=set)

    @property
    def writes(self) -> bool:
        return bool(self.rows)


def plan_batch(
    batch: list[PendingAppend],
    heads: dict[str, int | None],
    position: int,
    known_keys: dict[tuple[str, str], KnownKey] | None = None,
    runs: dict[str, RunRecord | None] | None = None,
    deleted: frozenset[str] | set[str] = frozenset(),
    importing: frozenset[str] | set[str] = frozenset(),
) -> BatchPlan:
    """Assign seqs and positions in queue order; `heads` is updated to the heads after it.

    An append whose idempotency key was seen before (in the store, or earlier in this batch)
    writes nothing and gets the seqs of the first append with that key, unless its request
    hash differs (IdempotencyKeyReused). A fenced append is refused (RunFenced) unless its run
    is the session's current run in `runs` and not ended; `runs` is updated as the batch starts
    and ends runs (the caller passes it whenever `needs_run_index`). A session in `importing`
    is not one yet (agentlog.infra.store.import_batches): SessionImporting.
    """
    # This runs for every append in the process, inside the write cycle that every caller
    # waits on: the lists are bound to locals and a one-event append skips the inner loop.
    keys = dict(known_keys) if known_keys else {}
    plan = BatchPlan(first_position=position, position=position, heads=heads)
    outcomes, changed, created = plan.outcomes, plan.changed, plan.created
    rows, states = plan.rows, plan.states
    for pending in batch:
        session_id = pending.session_id
        key = pending.idempotency_key
        if key is not None:
            earlier = keys.get((session_id, key))
            if earlier is not None:
                seqs, bound = earlier
                if bound is not None and pending.request_hash not in (None, bound):
                    outcomes.append(IdempotencyKeyReused(key))
                else:
                    outcomes.append(list(seqs))
                continue
        head = heads[session_id]
        events = pending.events
        if importing and session_id in importing:
            outcomes.append(SessionImporting(session_id))
            continue
        try:
            check_append(
                session_id, head, events, pending.expected_seq, deleted=session_id in deleted
            )
            if pending.fence is not None:
                _check_fence(session_id, pending, runs)
        except AgentlogError as refused:
            outcomes.append(refused)
            continue
        if head is None:
            created.append(session_id)
            head = 0
        if len(events) == 1:
            event = events[0]
            data = pending.encoded[0]
            head += 1
            assigned = [head]
            rows.append((session_id, head, type_of(event), event.run_id, len(data)))
            states.append(data)
            if type(event) is SessionDeleted:
                plan.tombstoned.add(session_id)
        else:
            assigned = list(range(head + 1, head + 1 + len(events)))
            for seq, event, data in zip(assigned, events, pending.encoded, strict=True):
                rows.append((session_id, seq, type_of(event), event.run_id, len(data)))
                states.append(data)
                if type(event) is SessionDeleted:
                    plan.tombstoned.add(session_id)
            head = assigned[-1]
        position += len(assigned)
        heads[session_id] = head
        changed.add(session_id)
        outcomes.append(assigned)
        if runs is not None:
            _index_runs(plan, runs, session_id, events, assigned)
            _index_turns_due(plan, session_id, events, assigned)
        if key is not None:
            keys[(session_id, key)] = (assigned, pending.request_hash)
            plan.new_keys.append((session_id, key, assigned, pending.request_hash))
    plan.position = position
    return plan


@dataclass(slots=True)
class PlainPlan:
    """A batch planned before its heads are known: seqs relative to each session's head before
    the batch (the first event of an existing session is 1), positions relative to the log's.
    Valid only if, when written, every session in `sessions` is absent where `creates` says so
    and otherwise exists and is not deleted: then no append in it is refused, whatever the
    heads are, and the store may number the rows itself."""

    plan: BatchPlan
    sessions: list[str]
    creates: list[bool]
    session_of: list[str]
    # The runs that must be their session's current, open run when written: one per fenced
    # session, as (session, run id, fencing token).
    fences: list[tuple[str, str, int]] = field(default_factory=list)

    def outcomes(self, heads_before: Sequence[int | None]) -> list[Outcome]:
        """Each append's seqs, given each session's head before the batch (None: created)."""
        base = dict(zip(self.sessions, heads_before, strict=True))
        outcomes = list(self.plan.outcomes)
        for index, session_id in enumerate(self.session_of):
            head = base[session_id]
            if head:  # None or 0: a created session's seqs are already its own
                relative: list[int] = outcomes[index]  # type: ignore[assignment]
                # Most appends are one event: no comprehension (a function call in 3.11).
                if len(relative) == 1:
                    outcomes[index] = [head + relative[0]]
                else:
                    outcomes[index] = [head + seq for seq in relative]
        return outcomes


def plan_plain(batch: list[PendingAppend]) -> PlainPlan | None:
    """A PlainPlan for `batch`, or None when an append in it needs what only the locked path
    reads: an idempotency key or a change to the run index, an expected seq on a session the
    batch does not create, or a refusal that no heads could avoid. A fenced append is planned
    as if its run were current and open; that is the fence the store checks when writing."""
    heads: dict[str, int | None] = {}
    runs: dict[str, RunRecord | None] | None = None
    for pending in batch:
        if pending.idempotency_key is not None:
            return None
        session_id = pending.session_id
        fence = pending.fence
        if fence is not None:
            runs = runs if runs is not None else {}
            if session_id not in runs:
                runs[session_id] = RunRecord(
                    session_id=session_id, run_id=fence.run_id, started_seq=fence.token
                )
        if session_id not in heads:
            # A session the batch creates starts absent; any other at head 0, so its seqs
            # come out relative to its real head.
            heads[session_id] = None if type(pending.events[0]) is SessionCreated else 0
        if pending.expected_seq is not None and heads[session_id] is not None:
            return None  # compared with a real head: only the locked path knows it
    if _changes_run_index(batch):
        return None
    sessions = list(heads)
    creates = [heads[s] is None for s in sessions]
    fences = [(s, r.run_id, r.started_seq) for s, r in (runs or {}).items() if r is not None]
    plan = plan_batch(batch, heads, 0, runs=runs)
    for outcome in plan.outcomes:
        if not isinstance(outcome, list):
            return None  # refused whatever the heads (a second SessionCreated, ...)
    if plan.tombstoned:
        return None  # a tombstone: the locked path, which never remembers its session
    return PlainPlan(plan, sessions, creates, [p.session_id for p in batch], fences)


def _changes_run_index(batch: list[PendingAppend]) -> bool:
    for pending in batch:
        for event in pending.events:
            if type(event) in _LOCKED:
                return True
    return False


def _index_turns_due(
    plan: BatchPlan, session_id: str, events: Sequence[Event], assigned: list[int]
) -> None:
    """Mark the session when this append owes it a look for its next turn: a queued prompt
    always (it waits behind whatever runs), an answer unless the run that acts on it starts
    later in the same append (the answer's continuation, written with it under the lease)."""
    due = None
    answer = None
    for event, seq in zip(events, assigned, strict=True):
        kind = type(event)
        if kind is PromptQueued:
            due = seq
        elif kind is ToolApprovalResponded:
            answer = seq
        elif kind is RunStarted:
            answer = None
    if answer is not None:
        due = answer if due is None else max(due, answer)
    if due is not None:
        plan.turns_due.append((session_id, due))


def _check_fence(
    session_id: str, pending: PendingAppend, runs: dict[str, RunRecord | None] | None
) -> None:
    fence = pending.fence
    assert fence is not None and runs is not None, "a fenced batch is planned with its runs"
    current = runs.get(session_id)
    if current is None or current.run_id != fence.run_id or current.started_seq != fence.token:
        raise RunFenced(session_id, fence.run_id, "a newer run started in the session")
    if current.ended_seq is not None:
        raise RunFenced(session_id, fence.run_id, f"it ended at seq {current.ended_seq}")


def _index_runs(
    plan: BatchPlan,
    runs: dict[str, RunRecord | None],
    session_id: str,
    events: Sequence[Event],
    assigned: list[int],
) -> None:
    for event, seq in zip(events, assigned, strict=True):
        kind = type(event)
        if kind not in _RUN_INDEXED or event.run_id is None:
            continue
        if kind is RunStarted:
            superseded = runs.get(session_id)
            if superseded is not None and superseded.ended_seq is None:
                # A run started while another is open supersedes it (its owner died without a
                # terminal event): the older one is ended in the index, as the projections do.
                plan.run_ends.append((session_id, superseded.run_id, seq))
            runs[session_id] = RunRecord(
                session_id=session_id, run_id=event.run_id, started_seq=seq
            )
            plan.run_starts.append((session_id, event.run_id, seq))
        else:
            plan.run_ends.append((session_id, event.run_id, seq))
            current = runs.get(session_id)
            if current is not None and current.run_id == event.run_id and current.ended_seq is None:
                runs[session_id] = msgspec.structs.replace(current, ended_seq=seq)
