"""agentlog as the claude-agent-sdk's `SessionStore`: the CLI's transcript in our database.

The SDK mirrors every line the CLI writes to its JSONL transcript into `append` (batched per
turn, or about every 100 ms with `session_store_flush="eager"`), and a resume loads the
transcript back from `load` before the CLI starts, on whichever instance runs it. Entries are
the CLI's own objects, kept verbatim (`load` returns them deep-equal, in append order); an
entry's `uuid` is its idempotency key, so a retried batch never lands twice.

Each transcript belongs to an agentlog session: a store bound to one (`for_session`, one per
run) binds every transcript it writes to that session, so deleting, exporting or forking the
session finds them. A bound store also files everything under one project key,
`RUNNER_PROJECT_KEY`, whatever key the SDK derives from the CLI's working directory (the
workspace root differs between instances): any instance then finds a run's transcript. A store
without a session (the SDK's helpers, the conformance harness) keeps the SDK's keys as given,
and writes transcripts that belong to the session they were first bound to, or to none.

A rewind's branch stores its kept turns as a reference to the transcript they are in
(agentlog.infra.agent.transcripts.references): every read here (`load`, `transcripts_of`)
expands it, so nothing outside this module ever sees one.

All four optional methods are implemented; `tests/contract/test_session_store.py` runs the
SDK's own conformance harness against it on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import time
from typing import Any, cast

from claude_agent_sdk import fold_session_summary
from claude_agent_sdk.types import (
    SessionKey,
    SessionListSubkeysKey,
    SessionStore,
    SessionStoreEntry,
    SessionStoreListEntry,
    SessionSummaryEntry,
)

from agentlog.infra.agent.transcripts.references import expanded
from agentlog.infra.store.store import OnBackend
from agentlog.infra.store.transcripts import StoredTranscript, TranscriptKey

# The project key of every transcript a bound store (the runner's) reads and writes.
RUNNER_PROJECT_KEY = "agentlog"


class LogSessionStore(SessionStore):
    """The SDK's `SessionStore` on agentlog's event store (see the module docstring)."""

    def __init__(self, store: OnBackend, *, session_id: str | None = None) -> None:
        self.tables = store.backend.transcript_tables()
        self.session_id = session_id
        # Bound to a session: one project key for everything (see the module docstring).
        self.project_key = None if session_id is None else RUNNER_PROJECT_KEY
        self._primed: dict[TranscriptKey, list[dict[str, Any]]] = {}

    def for_session(self, session_id: str) -> LogSessionStore:
        """The same tables, binding what it writes to `session_id` under `RUNNER_PROJECT_KEY`."""
        bound = LogSessionStore.__new__(LogSessionStore)
        bound.tables, bound.session_id = self.tables, session_id
        bound.project_key, bound._primed = RUNNER_PROJECT_KEY, {}
        return bound

    def prime(self, agent_session: str, entries: list[dict[str, Any]]) -> None:
        """The next `load` of this main transcript answers `entries` without a read: the runner
        has just loaded (and repaired) it, and the SDK loads it again to materialize it."""
        self._primed[self._key({"project_key": "", "session_id": agent_session})] = entries

    # -- required ----------------------------------------------------------------------------

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        if not entries:
            return
        target = self._key(key)

        def fold(previous: dict[str, Any] | None, added: list[dict[str, Any]]) -> dict[str, Any]:
            return self._folded(key, previous, added)

        await self.tables.append(
            target,
            self.session_id,
            cast("list[dict[str, Any]]", entries),
            None if target.subpath else fold,
            _now_ms(),
        )

    @staticmethod
    def _folded(
        key: SessionKey, previous: dict[str, Any] | None, added: list[dict[str, Any]]
    ) -> dict[str, Any]:
        prev: SessionSummaryEntry | None = (
            None
            if previous is None
            else {"session_id": key["session_id"], "mtime": 0, "data": previous}
        )
        return dict(fold_session_summary(prev, key, cast("Any", added))["data"])

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        target = self._key(key)
        primed = self._primed.pop(target, None)
        if primed is not None:
            return cast("list[SessionStoreEntry]", primed)
        found = await self.tables.load(target)
        if found and not target.subpath:
            found = await expanded(
                found, target.agent_session_id, functools.partial(self._main, target.project_key)
            )
        return cast("list[SessionStoreEntry] | None", found)

    async def append_reference(
        self, key: SessionKey, reference: dict[str, Any], lines: list[dict[str, Any]]
    ) -> None:
        """Start the main transcript of `key` with `reference`, the line that stands for
        `lines` (references.py); its summary is folded over `lines`, as for a copy."""
        target = self._key(key)

        def fold(previous: dict[str, Any] | None, _added: list[dict[str, Any]]) -> dict[str, Any]:
            return self._folded(key, previous, lines)

        await self.tables.append(target, self.session_id, [reference], fold, _now_ms())

    async def _main(self, project_key: str, agent_session: str) -> list[dict[str, Any]] | None:
        return await self.tables.load(TranscriptKey(project_key, agent_session, ""))

    # -- optional ----------------------------------------------------------------------------

    async def list_sessions(self, project_key: str) -> list[SessionStoreListEntry]:
        return [
            {"session_id": t.agent_session_id, "mtime": t.mtime}
            for t in await self.tables.list_main(self.project_key or project_key)
        ]

    async def list_session_summaries(self, project_key: str) -> list[SessionSummaryEntry]:
        return [
            {"session_id": t.agent_session_id, "mtime": t.mtime, "data": t.summary or {}}
            for t in await self.tables.list_main(self.project_key or project_key)
        ]

    async def delete(self, key: SessionKey) -> None:
        await self.tables.delete(self._key(key))

    async def list_subkeys(self, key: SessionListSubkeysKey) -> list[str]:
        return await self.tables.list_subkeys(
            self.project_key or key["project_key"], key["session_id"]
        )

    # -- by agentlog session -----------------------------------------------------------------

    async def transcripts_of(self, session_id: str) -> list[StoredTranscript]:
        """Every transcript of an agentlog session (export, fork), whole: a branch's
        reference is expanded from the session's other transcripts."""
        found = await self.tables.of_session(session_id)
        mains = {
            (t.key.project_key, t.key.agent_session_id): t.entries
            for t in found
            if not t.key.subpath
        }

        async def main(project_key: str, agent_session: str) -> list[dict[str, Any]] | None:
            held = mains.get((project_key, agent_session))
            return held if held is not None else await self._main(project_key, agent_session)

        return [
            t
            if t.key.subpath
            else StoredTranscript(
                key=t.key,
                entries=await expanded(
                    t.entries, t.key.agent_session_id, functools.partial(main, t.key.project_key)
                ),
            )
            for t in found
        ]

    async def delete_session(self, session_id: str) -> int:
        """Remove every transcript of an agentlog session; the entries removed."""
        return await self.tables.delete_session(session_id)

    async def owner(self, agent_session: str, project_key: str = RUNNER_PROJECT_KEY) -> str | None:
        """The agentlog session the transcript of `agent_session` belongs to (None: none)."""
        return await self.tables.owner(project_key, agent_session)

    async def restore(self, session_id: str, transcript: StoredTranscript) -> None:
        """Write an exported transcript back under its own key, bound to `session_id`."""
        exact = LogSessionStore.__new__(LogSessionStore)
        exact.tables, exact.session_id, exact.project_key, exact._primed = (
            self.tables,
            session_id,
            None,  # the key as exported, whatever it is
            {},
        )
        key = transcript.key
        target: dict[str, str] = {
            "project_key": key.project_key,
            "session_id": key.agent_session_id,
        }
        if key.subpath:
            target["subpath"] = key.subpath
        await exact.append(
            cast("SessionKey", target), cast("list[SessionStoreEntry]", transcript.entries)
        )

    def _key(self, key: SessionKey | SessionListSubkeysKey) -> TranscriptKey:
        subpath = cast("dict[str, Any]", key).get("subpath") or ""
        return TranscriptKey(self.project_key or key["project_key"], key["session_id"], subpath)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
