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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
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
