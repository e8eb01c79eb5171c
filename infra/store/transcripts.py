"""The CLI's own transcripts, kept in agentlog's database: what both backends share.

A transcript is addressed as the SDK addresses it (`agentlog.infra.agent.sdk.session_store`): a
project key,
the agent's session id and a subpath ("" for the main transcript, e.g. "subagents/agent-1" for a
subagent's). Each (project key, agent session) has one row in `agentlog_transcripts`: the
agentlog session it belongs to, the storage time of its last main append (epoch ms) and the
SDK's folded summary of the main transcript; its lines live in `agentlog_transcript_entries`,
numbered in append order, each with its `uuid` (the SDK's idempotency key) when it has one.

Every append takes that row's lock first (PostgreSQL: the row, SQLite: the database's write
lock), so the numbering and the summary's read-fold-write never race another append.

`Transcripts` is the one body of `TranscriptTables`; each backend supplies only its statements
and driver calls (`TranscriptRows`): agentlog.infra.sqlite.transcripts,
agentlog.infra.postgres.transcripts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# fold(previous summary data or None, the entries this append actually added) -> new data
SummaryFold = Callable[[dict[str, Any] | None, list[dict[str, Any]]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TranscriptKey:
    project_key: str
    agent_session_id: str
    subpath: str = ""  # "" is the main transcript


@dataclass(frozen=True, slots=True)
class TranscriptListing:
    agent_session_id: str
    mtime: int  # epoch milliseconds, storage time
    summary: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class StoredTranscript:
    """One transcript of an agentlog session, whole (for export, fork and delete)."""

    key: TranscriptKey
    entries: list[dict[str, Any]]


class TranscriptTables(Protocol):
    """The SQL side of `LogSessionStore`, one implementation per backend."""

    async def append(
        self,
        key: TranscriptKey,
        session_id: str | None,
        entries: Sequence[dict[str, Any]],
        fold: SummaryFold | None,
        now_ms: int,
    ) -> None:
        """Add the entries whose uuid the transcript does not hold yet, in order; bind the
        transcript to `session_id` if it belongs to none; with `fold`, keep the summary."""
        ...

    async def load(self, key: TranscriptKey) -> list[dict[str, Any]] | None: ...

    async def owner(self, project_key: str, agent_session_id: str) -> str | None:
        """The agentlog session the transcript belongs to; None if it belongs to none, or
        does not exist."""
        ...

    async def list_main(self, project_key: str) -> list[TranscriptListing]:
        """Transcripts of the project that have a main transcript."""
        ...

    async def delete(self, key: TranscriptKey) -> None:
        """The main key removes the transcript with every subpath; a subpath only itself."""
        ...

    async def list_subkeys(self, project_key: str, agent_session_id: str) -> list[str]: ...

    async def of_session(self, session_id: str) -> list[StoredTranscript]:
        """Every transcript that belongs to this agentlog session, entries in order."""
        ...

    async def delete_session(self, session_id: str) -> int:
        """Remove every transcript of this agentlog session; returns the entries removed."""
        ...


def encode_entry(entry: dict[str, Any]) -> str:
    # ASCII-only JSON: any string survives (lone surrogates, NUL) in a text column, and
    # json.loads gives back a deep-equal object, which is all the SDK asks.
    return json.dumps(entry, separators=(",", ":"))


def decode_entry(text: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(text)
    return entry


# Transcripts up to this many lines are decoded on the event loop (less than a millisecond).
DECODE_ON_LOOP = 200


def decode_entries(texts: Sequence[str]) -> list[dict[str, Any]]:
    return [decode_entry(text) for text in texts]


def entry_uuid(entry: dict[str, Any]) -> str | None:
    value = entry.get("uuid")
    return value if isinstance(value, str) and value else None


def new_entries(
    entries: Sequence[dict[str, Any]], known: set[str]
) -> list[tuple[str | None, dict[str, Any]]]:
    """The entries to store: those without a uuid, and the first of each uuid not `known`."""
    seen = set(known)
    kept: list[tuple[str | None, dict[str, Any]]] = []
    for entry in entries:
        uuid = entry_uuid(entry)
        if uuid is not None:
            if uuid in seen:
                continue
            seen.add(uuid)
        kept.append((uuid, entry))
    return kept


# -- the shared body -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefuseDeletedSession:
    """The append's first step: find the agentlog session the transcript belongs to
    (`session_id`, else the one its row is bound to), hold it against a delete until COMMIT,
    and raise SessionDeleted if it was deleted. Deletion is final: a transcript entry of a
    deleted session is never accepted, however late its run writes it. Answers nothing."""

    session_id: str | None


@dataclass(frozen=True, slots=True)
class BindTranscript:
    """Create the transcript's row, or bind it to `session_id` if it belongs to none, and lock
    it to the end of the transaction. Answers its stored summary (JSON text) or None."""

    session_id: str | None


@dataclass(frozen=True, slots=True)
class KnownUuids:
    """Answers which of `uuids` the transcript (at the key's subpath) holds already."""

    uuids: list[str]


@dataclass(frozen=True, slots=True)
class LastNumber:
    """Answers the highest entry number at the key's subpath (0 when it has none)."""


@dataclass(frozen=True, slots=True)
class InsertEntries:
    """Insert `rows` (uuid or None, entry JSON) numbered from `after + 1`; answers nothing."""

    after: int
    rows: list[tuple[str | None, str]]


@dataclass(frozen=True, slots=True)
class MarkMain:
    """Mark the transcript as having a main transcript, with its mtime and summary."""

    mtime: int
    summary: str | None


AppendStep = (
    RefuseDeletedSession | BindTranscript | KnownUuids | LastNumber | InsertEntries | MarkMain
)
# What an append does, in order; the backend runs each step and sends back its answer.
AppendSteps = Generator[AppendStep, Any, None]


def append_steps(
    key: TranscriptKey,
    session_id: str | None,
    entries: Sequence[dict[str, Any]],
    fold: SummaryFold | None,
    now_ms: int,
) -> AppendSteps:
    """The steps of `TranscriptTables.append`, to run in one transaction, in this order: the
    lock first, so the numbering and the summary's read-fold-write never race."""
    yield RefuseDeletedSession(session_id)
    stored = yield BindTranscript(session_id)
    known = yield KnownUuids([u for u in {entry_uuid(e) for e in entries} if u is not None])
    kept = new_entries(entries, known)
    if kept:
        last = yield LastNumber()
        yield InsertEntries(last, [(uuid, encode_entry(entry)) for uuid, entry in kept])
    if key.subpath:
        return
    summary = json.loads(stored) if stored is not None else None
    if fold is not None and kept:
        summary = fold(summary, [entry for _, entry in kept])
    yield MarkMain(now_ms, json.dumps(summary) if summary is not None else None)


def run_steps(steps: AppendSteps, answer: Callable[[AppendStep], Any]) -> None:
    """Drive the steps on a blocking driver: `answer(step)` runs it and returns its answer."""
    answered: Any = None
    while True:
        try:
            step = steps.send(answered)
        except StopIteration:
            return
        answered = answer(step)


async def run_steps_async(
    steps: AppendSteps, answer: Callable[[AppendStep], Awaitable[Any]]
) -> None:
    """Drive the steps on an asyncio driver: `await answer(step)` runs it."""
    answered: Any = None
    while True:
        try:
            step = steps.send(answered)
        except StopIteration:
            return
        answered = await answer(step)


class TranscriptRows(Protocol):
    """One backend's statements and driver calls for the transcript tables."""

    async def run_append(self, key: TranscriptKey, steps: AppendSteps) -> None:
        """Run the steps in one write transaction, sending each step's answer back."""
        ...

    async def entries(self, key: TranscriptKey) -> list[str]:
        """The entries' JSON at the key's subpath, in order."""
        ...

    async def owner(self, project_key: str, agent_session_id: str) -> str | None: ...

    async def main_rows(self, project_key: str) -> list[tuple[str, int, str | None]]:
        """(agent session, mtime, summary JSON) of the project's transcripts with a main one."""
        ...

    async def delete(self, key: TranscriptKey) -> None:
        """One transaction: the subpath's entries, or the whole transcript for the main key."""
        ...

    async def subkeys(self, project_key: str, agent_session_id: str) -> list[str]: ...

    async def session_rows(self, session_id: str) -> list[tuple[str, str, str, str]]:
        """(project key, agent session, subpath, entry JSON) of the session's transcripts,
        ordered by key, then entry number."""
        ...

    async def delete_session(self, session_id: str) -> int: ...


class Transcripts:
    """`TranscriptTables` on any backend's `TranscriptRows`."""

    def __init__(self, rows: TranscriptRows) -> None:
        self.rows = rows

    async def append(
        self,
        key: TranscriptKey,
        session_id: str | None,
        entries: Sequence[dict[str, Any]],
        fold: SummaryFold | None,
        now_ms: int,
    ) -> None:
        await self.rows.run_append(key, append_steps(key, session_id, entries, fold, now_ms))

    async def load(self, key: TranscriptKey) -> list[dict[str, Any]] | None:
        found = await self.rows.entries(key)
        if not found:
            return None
        if len(found) <= DECODE_ON_LOOP:
            return decode_entries(found)
        # A long conversation's transcript (20,000 lines after 5,000 runs) takes a tenth of a
        # second and more to decode, at every run's start: in a thread, so the server's other
        # requests (a start, a send, a stream) go on meanwhile.
        return await asyncio.to_thread(decode_entries, found)

    async def owner(self, project_key: str, agent_session_id: str) -> str | None:
        return await self.rows.owner(project_key, agent_session_id)

    async def list_main(self, project_key: str) -> list[TranscriptListing]:
        return [
            TranscriptListing(
                agent_session_id=agent_session_id,
                mtime=mtime,
                summary=json.loads(summary) if summary is not None else None,
            )
            for agent_session_id, mtime, summary in await self.rows.main_rows(project_key)
        ]

    async def delete(self, key: TranscriptKey) -> None:
        await self.rows.delete(key)

    async def list_subkeys(self, project_key: str, agent_session_id: str) -> list[str]:
        return await self.rows.subkeys(project_key, agent_session_id)

    async def of_session(self, session_id: str) -> list[StoredTranscript]:
        return _grouped(await self.rows.session_rows(session_id))

    async def delete_session(self, session_id: str) -> int:
        return await self.rows.delete_session(session_id)


def _grouped(rows: Iterable[tuple[str, str, str, str]]) -> list[StoredTranscript]:
    found: dict[TranscriptKey, list[dict[str, Any]]] = {}
    for project_key, agent_session_id, subpath, entry in rows:
        key = TranscriptKey(project_key, agent_session_id, subpath)
        found.setdefault(key, []).append(decode_entry(entry))
    return [StoredTranscript(key=k, entries=v) for k, v in found.items()]
