"""Deleting a session for good: what is removed, what is left, and in which order.

`SessionDeleter.delete(session_id)`:
1. The session must exist and not be deleted already (UnknownSession, SessionDeleted).
2. An active run is cancelled first (on whichever instance drives it), and the delete waits
   for its terminal event, so no writer is left; a run still stopping when that bounded wait
   ends refuses the delete (RunAlreadyActive, 409) with nothing deleted.
3. One transaction, under the append lock (the store's backend: `deletion.py` in its folder):
   a `session_deleted` event is written at the seq after the last one, the tombstone, and the
   session's idempotency keys, run index and leases and projection rows are deleted; then its
   events and the CLI's transcripts (agentlog.infra.store.transcripts) are removed, 1,000 rows
   per transaction, so other sessions' appends never wait for more than a batch. The
   tombstone holds no content; its `agentlog_sessions` row stays, so the id can never be
   created again (SessionAlreadyExists, shown as 410), and the store refuses every later
   append and transcript entry of the session (SessionDeleted), in the append's own
   transaction, whatever was in flight (the EventStore contract).
4. Live followers are woken: they read the tombstone as the next event and their streams end.
5. The session's working directory on this host is removed; every other host removes its own
   in its next sweep of deleted sessions' directories (agentlog.infra.sessions.workspaces). A run's
   HOME is
   removed when the run ends (or by the sweep of abandoned runs, after a crash).

Nothing of the content stays on disk: SQLite runs with `secure_delete` and the WAL is
checkpointed and truncated after the delete; on PostgreSQL the rows are deleted (the space of
dead rows is reused after VACUUM, which PostgreSQL's autovacuum runs).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agentlog.domain.errors import (
    RunAlreadyActive,
    RunNotActive,
    SessionDeleted,
    UnknownRun,
    UnknownSession,
)
from agentlog.infra.sessions.tombstone import deleted_at
from agentlog.infra.sessions.workspaces import directory_name, remove_workspace
from agentlog.infra.store.store import Store


class RunsOfSessions(Protocol):
    """What deleting needs of the agent runner (agentlog.infra.agent.run.runner.AgentRunner)."""

    async def active_run(self, session_id: str) -> str | None: ...

    async def cancel(self, session_id: str, run_id: str, reason: str = ...) -> bool: ...


@dataclass(frozen=True, slots=True)
class Deletion:
    session_id: str
    tombstone_seq: int
    events_removed: int


async def delete_log(store: Store, session_id: str, reason: str) -> Deletion:
    """Step 3 alone (the CLI's delete, once it made sure no run is active)."""
    seq, removed = await store.backend.delete_session(session_id, reason)
    await store.wakeups.publish([session_id])
    return Deletion(session_id=session_id, tombstone_seq=seq, events_removed=removed)


class SessionDeleter:
    """Deletes sessions through the one path above; `on_deleted(reason)` counts them."""

    def __init__(
        self,
        store: Store,
        runs: RunsOfSessions | None = None,
        *,
        workspace_root: Path | None = None,
        on_deleted: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.runs = runs
        self.workspace_root = workspace_root
        self.on_deleted = on_deleted

    async def delete(self, session_id: str, reason: str = "requested") -> Deletion:
        when = await deleted_at(self.store, session_id)
        if when is not None:
            raise SessionDeleted(session_id, when.isoformat())
        if await self.store.session(session_id) is None:
            raise UnknownSession(session_id)
        if self.runs is not None:
            active = await self.runs.active_run(session_id)
            if active is not None:
                stopped = True
                # RunNotActive / UnknownRun: it ended by itself meanwhile.
                with contextlib.suppress(RunNotActive, UnknownRun):
                    stopped = await self.runs.cancel(session_id, active, reason="session deleted")
                if not stopped:
                    # Its CLI still works in the session's workspace: nothing is deleted under
                    # it (409 run_active); the cancel goes on, and the client tries again.
                    raise RunAlreadyActive(session_id, active)
        deletion = await delete_log(self.store, session_id, reason)
        if self.workspace_root is not None:
            workspace = self.workspace_root / directory_name(session_id)
            await asyncio.to_thread(remove_workspace, workspace)
        if self.on_deleted is not None:
            self.on_deleted(reason)
        return deletion
