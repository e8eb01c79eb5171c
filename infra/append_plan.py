"""Deciding one group-commit transaction: which appends land, at which seqs and positions.

Both stores call `plan_batch` under their write lock with the heads and idempotency keys they
just read, then write the rows it returns. The rules themselves are domain.appending's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.appending import check_append
from domain.errors import AgentlogError
from domain.events import type_of
from infra.group_commit import Outcome, PendingAppend

# One events-table row as the stores send it: (session, seq, topic, run id, length of state).
# The state bytes travel separately (`BatchPlan.states`, same order); the row's global
# position is `BatchPlan.first_position` plus its index plus one.
EventRow = tuple[str, int, str, str | None, int]


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
    # (session, key, seqs) to remember, for appends that carried an idempotency key.
    new_keys: list[tuple[str, str, list[int]]] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return bool(self.rows)


def plan_batch(
    batch: list[PendingAppend],
    heads: dict[str, int | None],
    position: int,
    known_keys: dict[tuple[str, str], list[int]] | None = None,
) -> BatchPlan:
    """Assign seqs and positions in queue order; `heads` is updated to the heads after it.

    An append whose idempotency key was seen before (in the store, or earlier in this batch)
    writes nothing and gets the seqs of the first append with that key.
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
                outcomes.append(list(earlier))
                continue
        head = heads[session_id]
        events = pending.events
        try:
            check_append(session_id, head, events, pending.expected_seq)
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
        else:
            assigned = list(range(head + 1, head + 1 + len(events)))
            for seq, event, data in zip(assigned, events, pending.encoded, strict=True):
                rows.append((session_id, seq, type_of(event), event.run_id, len(data)))
                states.append(data)
            head = assigned[-1]
        position += len(assigned)
        heads[session_id] = head
        changed.add(session_id)
        outcomes.append(assigned)
        if key is not None:
            keys[(session_id, key)] = assigned
            plan.new_keys.append((session_id, key, assigned))
    plan.position = position
    return plan
