"""The SDK's resume from agentlog's transcript store, written to disk off the event loop.

With `resume=` and a `session_store`, `ClaudeSDKClient.connect()` loads the transcript and
writes it, one `json.dumps` per line, into a temporary `CLAUDE_CONFIG_DIR` for the CLI, on the
event loop (`materialize_resume_session`): ~100 ms at 20,000 lines, which every other request
of the process waits for (docs/benchmarks.md, "stall during a run").

Here the same SDK function runs in a worker thread, on a loop of its own, over an in-memory
copy of the transcript (which the runner has just read and primed: no database call leaves the
main loop). The client then gets the result the way the SDK applies its own
(`apply_materialized_options`), with a store that mirrors the run's new lines into agentlog but
loads nothing, so `connect()` finds nothing more to write. The directory has the SDK's own
prefix, so the recovery of a crashed run finds and removes it as before (leftovers.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from claude_agent_sdk import ClaudeAgentOptions
from claude_agent_sdk._internal.session_resume import (
    MaterializedResume,
    apply_materialized_options,
    materialize_resume_session,
)
from claude_agent_sdk.types import (
    SessionKey,
    SessionListSubkeysKey,
    SessionStore,
    SessionStoreEntry,
)

_Key = tuple[str, str]  # (session id, subpath: "" for the main transcript)


class _Copied(SessionStore):
    """The transcript and its subagents' transcripts, in memory, for the worker thread."""

    def __init__(self, entries: dict[_Key, list[SessionStoreEntry]]) -> None:
        self.entries = entries

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        raise RuntimeError("a resume copy is read-only")

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        return self.entries.get((key["session_id"], key.get("subpath") or ""))

    async def list_subkeys(self, key: SessionListSubkeysKey) -> list[str]:
        return [sub for (sid, sub) in self.entries if sid == key["session_id"] and sub]


class _MirrorOnly(SessionStore):
    """The run's store for what the CLI writes from now on; the resume is already on disk."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        await self.store.append(key, entries)

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        return None  # connect() then resumes from the CLAUDE_CONFIG_DIR already set


@asynccontextmanager
async def resumed_off_loop(options: ClaudeAgentOptions) -> AsyncIterator[ClaudeAgentOptions]:
    """`options` with its resume written to disk in a thread, for the block; the directory is
    removed after it. Options without a store-backed resume are yielded unchanged."""
    store = options.session_store
    if store is None or options.resume is None:
        yield options
        return
    copied = await _copy(store, options)
    if copied is None:
        yield options  # nothing stored: the CLI starts the session (as the SDK would)
        return
    materialized: MaterializedResume | None = await asyncio.to_thread(
        asyncio.run, materialize_resume_session(replace(options, session_store=copied))
    )
    if materialized is None:
        yield options
        return
    try:
        yield replace(
            apply_materialized_options(options, materialized),
            # The SDK's optional methods keep their defaults (it asks which are overridden).
            session_store=_MirrorOnly(store),  # type: ignore[abstract]
        )
    finally:
        await materialized.cleanup()


async def _copy(store: SessionStore, options: ClaudeAgentOptions) -> _Copied | None:
    """What the SDK's materialization reads, read here on the main loop: the main transcript
    (primed by the runner: no read) and those of its subagents."""
    agent_session = options.resume
    assert agent_session is not None
    # A bound LogSessionStore keeps every transcript under one project key of its own.
    main = await store.load({"project_key": "", "session_id": agent_session})
    if not main:
        return None
    entries: dict[_Key, list[SessionStoreEntry]] = {(agent_session, ""): main}
    for subpath in await store.list_subkeys({"project_key": "", "session_id": agent_session}):
        key: SessionKey = {"project_key": "", "session_id": agent_session, "subpath": subpath}
        sub = await store.load(key)
        if sub:
            entries[(agent_session, subpath)] = sub
    return _Copied(entries)  # type: ignore[abstract]
