"""`apply` and `fold`: each visible event goes to its handler; any other moves `last_seq` only."""

from __future__ import annotations

from collections.abc import Iterable

from msgspec.structs import replace

import agentlog.projections.ui_messages.approvals as approvals
import agentlog.projections.ui_messages.data_parts as data_parts
import agentlog.projections.ui_messages.rewinds as rewinds
import agentlog.projections.ui_messages.runs as runs
import agentlog.projections.ui_messages.text_parts as text_parts
import agentlog.projections.ui_messages.tool_parts as tool_parts
from agentlog.domain.events import RecordedEvent
from agentlog.projections.ui_messages.builder import Builder, Handler
from agentlog.projections.ui_messages.changes import NONE, MessageChanges
from agentlog.projections.ui_messages.state import EMPTY, ConversationState


def apply(state: ConversationState, recorded: RecordedEvent) -> ConversationState:
    """The state after one more event; an event at or before `last_seq` changes nothing."""
    if recorded.seq <= state.last_seq:
        return state
    return fold((recorded,), state)


def fold(events: Iterable[RecordedEvent], state: ConversationState = EMPTY) -> ConversationState:
    """Apply events of one session in seq order; events already folded are skipped."""
    return fold_changes(events, state)[0]


def fold_changes(
    events: Iterable[RecordedEvent],
    state: ConversationState = EMPTY,
    hidden: int = 0,
    new_runs: frozenset[str] = frozenset(),
) -> tuple[ConversationState, MessageChanges]:
    """`fold`, and which of the new state's messages differ from `state`'s (see
    agentlog.projections.ui_messages.changes): found from what the fold touched, never by
    comparing the two conversations, so it costs nothing per untouched message.

    `hidden`: `state` holds only the newest messages, after that many older ones; positions
    in the changes are then the window's. Raises OutsideWindow when the events need (or may
    need) an older message: fold the whole conversation then. `new_runs`: run ids known to
    start in these events for the first time (no older message can name them), so their
    start needs no older message."""
    builder: Builder | None = None
    last_seq = state.last_seq
    for recorded in events:
        if recorded.seq <= last_seq:
            continue
        last_seq = recorded.seq
        handler = _HANDLERS.get(type(recorded.event))
        if handler is None:
            continue  # nothing visible: only the checkpoint moves
        if builder is None:
            builder = Builder(state, hidden, new_runs)
        handler(builder, recorded)
    if builder is None:
        unchanged = state if last_seq == state.last_seq else replace(state, last_seq=last_seq)
        return unchanged, NONE
    written = set(builder.thawed)
    written.update(range(builder.kept, len(builder.messages)))
    after = builder.freeze(last_seq)
    shrunk = len(after.messages) < len(state.messages)
    return after, MessageChanges(written=frozenset(written), shrunk=shrunk)


_HANDLERS: dict[type, Handler] = {
    **rewinds.HANDLERS,
    **runs.HANDLERS,
    **text_parts.HANDLERS,
    **tool_parts.HANDLERS,
    **approvals.HANDLERS,
    **data_parts.HANDLERS,
}
