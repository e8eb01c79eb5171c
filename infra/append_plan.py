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
    keys = dict(known_keys or {})
    plan = BatchPlan(position=position, heads=heads)
    for pending in batch:
        session_id = pending.session_id
        if pending.idempotency_key is not None:
            earlier = keys.get((session_id, pending.idempotency_key))
            if earlier is not None:
                plan.outcomes.append(list(earlier))
                continue
        head = heads[session_id]
        try:
            check_append(session_id, head, pending.events, pending.expected_seq)
        except AgentlogError as refused:
            plan.outcomes.append(refused)
            continue
        if head is None:
            plan.created.append(session_id)
        start = head or 0
        seqs = list(range(start + 1, start + 1 + len(pending.events)))
        for seq, event, data in zip(seqs, pending.events, pending.encoded, strict=True):
            plan.position += 1
            plan.sids.append(session_id)
            plan.seqs.append(seq)
            plan.topics.append(type_of(event))
            plan.states.append(data)
            plan.positions.append(plan.position)
            plan.run_ids.append(event.run_id)
        heads[session_id] = seqs[-1]
        plan.changed.add(session_id)
        plan.outcomes.append(seqs)
        if pending.idempotency_key is not None:
            keys[(session_id, pending.idempotency_key)] = seqs
            plan.new_keys.append((session_id, pending.idempotency_key, seqs))
    return plan
