"""The current branch of a conversation: the log minus what a rewind set aside.

The log is append-only. Regenerating an answer or editing an earlier message appends
`conversation_rewound(to_seq=T)` and then the run that answers from there; the events after T
and before the rewind are still in the log (and in `inspect`), but they are no longer part of
the conversation: not in GET /messages, hydration or the agent's context.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentlog.domain.events import ConversationRewound, RecordedEvent


def current_branch(events: Iterable[RecordedEvent]) -> list[RecordedEvent]:
    """The events of the conversation's current branch, in log order. A rewind drops every
    kept event after its `to_seq`; the rewind itself stays, as the branch point."""
    kept: list[RecordedEvent] = []
    for recorded in events:
        event = recorded.event
        if isinstance(event, ConversationRewound):
            while kept and kept[-1].seq > event.to_seq:
                kept.pop()
        kept.append(recorded)
    return kept
