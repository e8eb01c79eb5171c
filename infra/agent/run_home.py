"""A run's place on disk: the session's working directory and a fresh HOME per run, holding
the session's earlier runs as the CLI's transcript so any instance can continue the session."""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from domain.events import RecordedEvent
from infra.agent.reaping import HOME_PREFIX
from infra.agent.transcript import transcript_lines, write_transcript
from infra.workspaces import note_session


@dataclass(frozen=True)
class RunHome:
    """Where the CLI of one run works: `cwd`, its `home`, and how the SDK picks up the
    conversation (`resume` an agent session written to the transcript, or start `session_id`)."""

    cwd: str
    home: Path
    resume: str | None
    session_id: str | None


def prepare_run_home(
    workspace_root: Path,
    run_home_root: Path,
    session_id: str,
    run_id: str,
    agent_session: str,
    history: Sequence[RecordedEvent],
) -> RunHome:
    """Create the session's working directory and the run's HOME, with `history` (the
    session's earlier events on the current branch) written as the transcript of
    `agent_session`. File I/O: run it in a thread."""
    workspace = workspace_root / directory_name(session_id)
    workspace.mkdir(parents=True, exist_ok=True)
    note_session(workspace, session_id)  # so every host can remove it once it is deleted
    cwd = str(workspace.resolve())
    run_home_root.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{run_id}-", dir=run_home_root))
    lines = transcript_lines(history, session_id=session_id, agent_session=agent_session, cwd=cwd)
    if not lines:
        return RunHome(cwd=cwd, home=home, resume=None, session_id=agent_session)
    write_transcript(home, cwd, agent_session, lines)
    return RunHome(cwd=cwd, home=home, resume=agent_session, session_id=None)


def directory_name(session_id: str) -> str:
    """A session's working directory name: readable, and unique by a hash of the id."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", session_id)[:80]
    return f"{readable}-{hashlib.sha256(session_id.encode()).hexdigest()[:12]}"
