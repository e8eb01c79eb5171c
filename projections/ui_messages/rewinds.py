"""What takes messages away: a rewind to an earlier seq, and the session's tombstone."""

from __future__ import annotations

from agentlog.domain.events import ConversationRewound, RecordedEvent, SessionDeleted
from agentlog.projections.ui_messages.builder import Builder, Handler


def _session_deleted(b: Builder, recorded: RecordedEvent) -> None:
    # The tombstone: the conversation is gone.
    b.whole()
    b.messages.clear()
    b.thawed.clear()
    b.kept = 0
    b.runs = {}
    b.open_run_id = None
    b.open_message = None


def _rewound(b: Builder, recorded: RecordedEvent) -> None:
    # The conversation goes back to `to_seq`: the messages created after it are off the
    # current branch. A run whose close came from a dropped run's start is open again, as it
    # was before that start (the branch no longer holds the start that closed it).
    event = recorded.event
    assert isinstance(event, ConversationRewound)
    b.whole()
    to_seq = event.to_seq
    kept = 0
    while kept < len(b.messages) and b.messages[kept].seq <= to_seq:
        kept += 1
    del b.messages[kept:]
    b.kept = min(b.kept, kept)
    b.thawed = [position for position in b.thawed if position < kept]
    b.runs = None
    b.open_message = None
    if b.open_run_id is not None and all(m.id != b.open_run_id for m in b.messages):
        b.open_run_id = None
    for position in range(len(b.messages) - 1, -1, -1):
        run = b.messages[position].run
        if run is not None and run.superseded_at is not None and run.superseded_at > to_seq:
            message = b.thaw(position)
            assert run.superseded_from is not None
            message.run = run.superseded_from
            b.open_run_id = message.id
            break


HANDLERS: dict[type, Handler] = {
    SessionDeleted: _session_deleted,
    ConversationRewound: _rewound,
}
