"""A session as an import writes it: its events exactly as stored, its transcripts and the
files sent with its prompts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from agentlog.domain.errors import AgentlogError
from agentlog.domain.events import RecordedEvent, SessionEvent
from agentlog.infra.store.attachments import StoredFile
from agentlog.infra.store.transcripts import StoredTranscript


class ImportRefused(AgentlogError):
    """The file is not an export agentlog can restore; the message names the line."""

    code = "import_refused"


# A msgspec Struct with gc=False, not a dataclass: it refers to its event and bytes, never back,
# and a 60,000-event import's records then add nothing to the garbage collector's full passes
# (which hold the event loop while they scan).
class ImportedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    seq: int
    time: datetime
    type: str
    run_id: str | None
    state: bytes  # the event's JSON exactly as it will be stored
    event: SessionEvent


@dataclass(frozen=True, slots=True)
class ImportedSession:
    session_id: str
    events: list[ImportedEvent]
    transcripts: list[StoredTranscript] = field(default_factory=list)
    files: list[StoredFile] = field(default_factory=list)  # sent with its prompts

    @property
    def head(self) -> int:
        return self.events[-1].seq

    def as_recorded(self, first_position: int = 1) -> list[RecordedEvent]:
        """The events as the log will hold them (positions from `first_position`)."""
        return [
            RecordedEvent(
                session_id=self.session_id,
                seq=e.seq,
                position=first_position + i,
                time=e.time,
                event=e.event,
            )
            for i, e in enumerate(self.events)
        ]
