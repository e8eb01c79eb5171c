"""eventsourcing interop: its recorders and notification log read agentlog's PostgreSQL table.

agentlog's events table uses eventsourcing's stored-event layout (originator_id,
originator_version, topic, state, notification_id), so an application built on eventsourcing
(a ProcessApplication, a ProjectionRunner, a NotificationLogReader) can follow agentlog's log
as its upstream without a copy. `AgentlogMapper` turns those stored events back into
agentlog's own events, decoding by the tag in `topic`.

eventsourcing is synchronous (psycopg 3 with threads): call these from a thread, never from
the event loop. We do not point its SQLite recorder at our file: it addresses notifications by
the implicit rowid, which SQLite may renumber on VACUUM, while our position is a real column.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from agentlog.domain.events import Event, SessionEvent, decode_event, encode_event, type_of

EVENTS_TABLE = "agentlog_events"


class _UnusedTranscoder(Transcoder):
    """The mapper below encodes with msgspec; eventsourcing's Mapper still wants a transcoder."""

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


class AgentlogMapper(Mapper[str]):
    """Maps agentlog events to and from eventsourcing's StoredEvent by their tag."""

    def __init__(self) -> None:
        super().__init__(transcoder=_UnusedTranscoder())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        raise TypeError("use to_stored(session_id, seq, event): agentlog events carry no ids")

    def to_stored(self, session_id: str, seq: int, event: Event) -> StoredEvent:
        return StoredEvent(
            originator_id=session_id,
            originator_version=seq,
            topic=type_of(event),
            state=encode_event(event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> SessionEvent:  # type: ignore[override]
        return decode_event(bytes(stored_event.state))


def application_recorder(dsn: str, schema: str = "public") -> PostgresApplicationRecorder:
    """eventsourcing's own recorder, pointed at agentlog's events table (read it; agentlog's
    store is the only writer, because its appends also keep the session heads)."""
    parts = urlsplit(dsn)
    datastore = PostgresDatastore(
        dbname=(parts.path or "/postgres").lstrip("/"),
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        schema=schema,
        originator_id_type="text",
    )
    return PostgresApplicationRecorder(datastore, events_table_name=EVENTS_TABLE)
