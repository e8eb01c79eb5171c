"""Sessions' working directories on this host, and removing those of deleted sessions.

A run works in `<workspace root>/<directory_name(session)>` on whichever instance drives it,
so a session that ran on several hosts has a directory on each. Deleting it removes the one
on the deleting host at once; every other instance finds its own in `sweep_deleted` (at start
and on a timer), which removes the directory of every session whose log ends in its tombstone.

A directory's session is named in a sidecar file, `<root>/.sessions/<directory name>`, not in
the directory itself: the agent works there, and its name is a lossy rendering of the id.
A directory whose session is unknown to this database is left alone (another deployment may
share the root), and so is one without a sidecar (written before sidecars existed, or not ours).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
from pathlib import Path

from agentlog.domain.ports.event_store import EventStore
from agentlog.infra.private_files import private_directory, write_private_text
from agentlog.infra.sessions.tombstone import deleted_at

log = logging.getLogger(__name__)

SIDECARS = ".sessions"


def directory_name(session_id: str) -> str:
    """A session's working directory name: readable, and unique by a hash of the id."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", session_id)[:80]
    return f"{readable}-{hashlib.sha256(session_id.encode()).hexdigest()[:12]}"


def note_session(workspace: Path, session_id: str) -> None:
    """Record which session `workspace` belongs to (file I/O: call it from a thread)."""
    sidecar = workspace.parent / SIDECARS / workspace.name
    if sidecar.exists():
        return
    private_directory(sidecar.parent)
    write_private_text(sidecar, session_id)


def remove_workspace(workspace: Path) -> None:
    """Remove a session's directory and its sidecar (file I/O: call it from a thread); its
    quota's tmpfs (infra/agent/sandbox/workspace_quota.py) is unmounted first."""
    from agentlog.infra.agent.sandbox.workspace_quota import unbound_workspace

    unbound_workspace(workspace)
    shutil.rmtree(workspace, ignore_errors=True)
    (workspace.parent / SIDECARS / workspace.name).unlink(missing_ok=True)


def noted_workspaces(root: Path) -> dict[str, Path]:
    """Session id -> its directory under `root`, for every directory with a sidecar."""
    found: dict[str, Path] = {}
    sidecars = root / SIDECARS
    if not sidecars.is_dir():
        return found
    for sidecar in sidecars.iterdir():
        try:
            session_id = sidecar.read_text(encoding="utf-8")
        except OSError:
            continue
        found[session_id] = root / sidecar.name
    return found


async def sweep_deleted(store: EventStore, root: Path) -> list[str]:
    """Remove the directories under `root` of sessions deleted (on any instance); returns
    those sessions. One read of the tombstone per directory found."""
    removed: list[str] = []
    for session_id, workspace in (await asyncio.to_thread(noted_workspaces, root)).items():
        if await deleted_at(store, session_id) is None:
            continue
        await asyncio.to_thread(remove_workspace, workspace)
        removed.append(session_id)
    if removed:
        log.info("removed the directories of %d deleted sessions", len(removed))
    return removed
