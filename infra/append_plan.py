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


@dataclass(slots=True)
class BatchPlan:
    position: int
    heads: dict[str, int | None]
    outcomes: list[Outcome] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    # Sessions this transaction creates: the only writes to the sessions table.
    created: list[str] = field(default_factory=list)
    # Column-wise rows for the events table.
    sids: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    run_ids: list[str | None] = field(default_factory=list)
    # (session, key, seqs) to remember, for appends that carried an idempotency key.
    new_keys: list[tuple[str, str, list[int]]] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return bool(self.sids)


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
    # waits on: the columns are bound to locals and a one-event append skips the inner loop.
    keys = dict(known_keys) if known_keys else {}
    plan = BatchPlan(position=position, heads=heads)
    outcomes, changed, created = plan.outcomes, plan.changed, plan.created
    sids, seqs, topics = plan.sids, plan.seqs, plan.topics
    states, positions, run_ids = plan.states, plan.positions, plan.run_ids
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
            head += 1
            position += 1
            assigned = [head]
            sids.append(session_id)
            seqs.append(head)
            topics.append(type_of(event))
            states.append(pending.encoded[0])
            positions.append(position)
            run_ids.append(event.run_id)
        else:
            assigned = list(range(head + 1, head + 1 + len(events)))
            for seq, event, data in zip(assigned, events, pending.encoded, strict=True):
                position += 1
                sids.append(session_id)
                seqs.append(seq)
                topics.append(type_of(event))
                states.append(data)
                positions.append(position)
                run_ids.append(event.run_id)
            head = assigned[-1]
        heads[session_id] = head
        changed.add(session_id)
        outcomes.append(assigned)
        if key is not None:
            keys[(session_id, key)] = assigned
            plan.new_keys.append((session_id, key, assigned))
    plan.position = position
    return plan
