"""Export a session as JSON lines, and import such a file as a new session, exactly.

An export line is the event's flat form (agentlog.domain.events.encode_recorded): `seq`, `position`,
`session_id`, `time`, then the event's own JSON as stored (`type`, `run_id`, its fields, and any
field a newer version wrote). An import
writes the same seqs, the same event JSON and the same times; only `position` differs, since
positions are global to a database: the imported events are appended at the end of the
target's log (the global feed and the projector see them as new events).

`append` stamps the time itself, so the import writes its rows directly, through the store's
backend (`importing.py` in each backend's folder), in the same transaction discipline as the
stores: the append lock is taken before the last position is read.
It only ever creates a session: an existing session id is refused (SessionAlreadyExists).

After its events, an export carries the session's transcripts (the CLI's own lines the runs
resume from, `agentlog.infra.agent.sdk.session_store`): one line per entry, `{"transcript":
{"project_key",
"agent_session", "subpath"}, "entry": {...}}`, in append order. An import writes them back,
bound to the imported session, so it resumes with its transcript. A transcript whose key the
target database already holds (a copy imported under another name beside its original) is
left out: the runner then starts a branch of the imported session's own, converted from its
events, rather than share the original's.

Last come the files sent with its prompts (agentlog.infra.store.attachments), one line each:
`{"attachment": {"sha256", "media_type", "size", "filename", "data": <base64>}}`. An import
checks each file's hash against its bytes and stores it in the imported session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from agentlog.domain.errors import AgentlogError
from agentlog.domain.events import (
    SessionCreated,
    SessionEvent,
    encode_recorded,
    type_of,
)
from agentlog.domain.rules.appending import validate_session_id
from agentlog.infra.agent.sdk.session_store import LogSessionStore
from agentlog.infra.store.attachments import StoredFile
from agentlog.infra.store.import_batches import BetweenBatches
from agentlog.infra.store.imported_session import ImportedEvent, ImportedSession, ImportRefused
from agentlog.infra.store.statistics import after_bulk_write
from agentlog.infra.store.store import Store
from agentlog.infra.store.transcripts import StoredTranscript, TranscriptKey

EXPORT_PAGE = 5000
_ENVELOPE = ("seq", "position", "session_id", "time")


class _Envelope(msgspec.Struct):
    seq: int
    session_id: str
    time: datetime


_envelope = msgspec.json.Decoder(_Envelope)
_event = msgspec.json.Decoder(SessionEvent)
_as_dict = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class ImportResult:
    session_id: str
    events: int
    first_position: int
    last_position: int
    transcript_entries: int = 0  # written back; those of transcripts left out not counted


# -- export --------------------------------------------------------------------------------


async def export_lines(store: Store, session_id: str) -> AsyncIterator[bytes]:
    """The session's events up to its head when the export began, one JSON line each (with
    its trailing newline). Raises UnknownSession."""
    head = await store.head(session_id)
    after = 0
    while after < head:
        page = await store.read_stored(
            session_id, after=after, limit=min(EXPORT_PAGE, head - after)
        )
        if not page:
            return
        for recorded, stored in page:
            # The stored JSON, not the decoded event re-encoded: fields this version does not
            # know are kept, so an export from an older server loses nothing.
            yield encode_recorded(recorded, stored) + b"\n"
        after = page[-1][0].seq
    for transcript in await _transcripts_of(store, session_id):
        key = {
            "project_key": transcript.key.project_key,
            "agent_session": transcript.key.agent_session_id,
            "subpath": transcript.key.subpath,
        }
        for entry in transcript.entries:
            yield _encoder.encode({"transcript": key, "entry": entry}) + b"\n"
    for file in await store.backend.attachments().of_session(session_id):
        attachment = {
            "sha256": file.sha256,
            "media_type": file.media_type,
            "size": file.size,
            "filename": file.filename,
            "data": base64.b64encode(file.data).decode(),
        }
        yield _encoder.encode({"attachment": attachment}) + b"\n"


def is_transcript_line(line: bytes) -> bool:
    """An export line that is a transcript entry, not an event."""
    return line.startswith(b'{"transcript":')


def is_attachment_line(line: bytes) -> bool:
    """An export line that is a file sent with a prompt, not an event."""
    return line.startswith(b'{"attachment":')


async def _transcripts_of(store: Store, session_id: str) -> list[StoredTranscript]:
    # Whole: a rewind's branch stores a reference to its kept lines, expanded here, so an
    # export (and the import made of it) holds every line.
    return await LogSessionStore(store).transcripts_of(session_id)


# -- parsing an export ---------------------------------------------------------------------


def parse_export(lines: Iterable[bytes | str], *, rename_to: str | None = None) -> ImportedSession:
    """Read an export: one session, seqs 1, 2, 3, ... in order, seq 1 `session_created`.

    With `rename_to` the events are imported under that session id instead. Raises
    ImportRefused naming the first bad line.
    """
    session_id: str | None = None
    events: list[ImportedEvent] = []
    transcripts: dict[TranscriptKey, list[dict[str, Any]]] = {}
    files: list[StoredFile] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"line {number}"
        if is_attachment_line(line if isinstance(line, bytes) else line.encode()):
            if not events:
                raise ImportRefused(f"{where}: a file before the session's events")
            files.append(_attachment(line, where))
            continue
        if is_transcript_line(line if isinstance(line, bytes) else line.encode()):
            if not events:
                raise ImportRefused(f"{where}: a transcript entry before the session's events")
            key, entry = _transcript_entry(line, where)
            transcripts.setdefault(key, []).append(entry)
            continue
        try:
            envelope = _envelope.decode(line)
            body = _as_dict.decode(line)
        except msgspec.DecodeError as exc:
            raise ImportRefused(f"{where}: not an exported event ({exc})") from None
        try:
            event = _event.decode(line)
        except msgspec.ValidationError as exc:
            raise ImportRefused(f"{where}: not an event agentlog knows ({exc})") from None
        if envelope.time.tzinfo is None:
            raise ImportRefused(f"{where}: time {envelope.time.isoformat()} has no timezone")
        if session_id is None:
            session_id = envelope.session_id
        elif envelope.session_id != session_id:
            raise ImportRefused(
                f"{where}: session {envelope.session_id!r}, but the file began with session "
                f"{session_id!r} (an export holds one session)"
            )
        expected = len(events) + 1
        if envelope.seq != expected:
            raise ImportRefused(
                f"{where}: seq {envelope.seq} where seq {expected} was expected (an export "
                "holds seqs 1, 2, 3, ... in order)"
            )
        if (expected == 1) != isinstance(event, SessionCreated):
            raise ImportRefused(
                f"{where}: seq {expected} is {type_of(event)}; a session begins with "
                "session_created and has only that one"
            )
        for field in _ENVELOPE:
            body.pop(field, None)
        events.append(
            ImportedEvent(
                seq=envelope.seq,
                time=envelope.time,
                type=type_of(event),
                run_id=event.run_id,
                # Re-encoded from the line's own fields in the line's order, so fields this
                # version does not know survive the import.
                state=_encoder.encode(body),
                event=event,
            )
        )
    if session_id is None:
        raise ImportRefused("the file holds no events")
    target = rename_to if rename_to is not None else session_id
    try:
        validate_session_id(target)
    except AgentlogError as exc:
        raise ImportRefused(f"cannot import as {target!r}: {exc}") from None
    return ImportedSession(
        session_id=target,
        events=events,
        transcripts=[StoredTranscript(k, entries) for k, entries in transcripts.items()],
        files=files,
    )


class _AttachmentLine(msgspec.Struct):
    class File(msgspec.Struct):
        sha256: str
        media_type: str
        size: int
        data: str
        filename: str | None = None

    attachment: File


_attachment_line = msgspec.json.Decoder(_AttachmentLine)


def _attachment(line: bytes | str, where: str) -> StoredFile:
    try:
        file = _attachment_line.decode(line).attachment
        data = base64.b64decode(file.data, validate=True)
    except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error) as exc:
        raise ImportRefused(f"{where}: not a file of the session ({exc})") from None
    if hashlib.sha256(data).hexdigest() != file.sha256 or len(data) != file.size:
        raise ImportRefused(f"{where}: the file's bytes do not match its sha256 and size")
    return StoredFile(
        sha256=file.sha256,
        media_type=file.media_type,
        size=file.size,
        filename=file.filename,
        data=data,
    )


class _TranscriptLine(msgspec.Struct):
    class Key(msgspec.Struct):
        project_key: str
        agent_session: str
        subpath: str = ""

    transcript: Key
    entry: dict[str, Any]


_transcript_line = msgspec.json.Decoder(_TranscriptLine)


def _transcript_entry(line: bytes | str, where: str) -> tuple[TranscriptKey, dict[str, Any]]:
    try:
        decoded = _transcript_line.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ImportRefused(f"{where}: not a transcript entry ({exc})") from None
    key = decoded.transcript
    if not key.project_key or not key.agent_session:
        raise ImportRefused(f"{where}: a transcript entry needs a project_key and agent_session")
    return TranscriptKey(key.project_key, key.agent_session, key.subpath), decoded.entry


# -- writing -------------------------------------------------------------------------------


async def import_session(
    store: Store, session: ImportedSession, between_batches: BetweenBatches | None = None
) -> ImportResult:
    """Write `session` as a new session at the end of the store's log, in batches that each
    hold the append lock briefly and that nobody sees until the last one commits
    (agentlog.infra.store.import_batches), then wake its readers. Raises
    SessionAlreadyExists, SessionImporting (the same id is being imported)."""
    written = await store.backend.import_session(session, between_batches)
    if session.files:
        await store.backend.attachments().put(session.session_id, session.files)
    await store.wakeups.publish([session.session_id])
    await after_bulk_write(store, len(session.events))  # a large import or fork
    return ImportResult(
        session_id=session.session_id,
        events=len(session.events),
        first_position=written.first_position,
        last_position=written.last_position,
        transcript_entries=await _restore_transcripts(store, session),
    )


async def _restore_transcripts(store: Store, session: ImportedSession) -> int:
    """Write the session's transcripts back (after its events: a session's transcripts are
    found through it). Returns the entries written."""
    if not session.transcripts:
        return 0
    sessions = LogSessionStore(store)
    written = 0
    taken: set[tuple[str, str]] = set()
    for transcript in session.transcripts:
        key = transcript.key
        owner_key = (key.project_key, key.agent_session_id)
        if owner_key not in taken:
            owner = await sessions.owner(key.agent_session_id, key.project_key)
            exists = await sessions.tables.load(TranscriptKey(*owner_key)) is not None
            if owner not in (None, session.session_id) or (owner is None and exists):
                taken.add(owner_key)
        if owner_key in taken:
            continue
        await sessions.restore(session.session_id, transcript)
        written += len(transcript.entries)
    return written
