"""A run's place on disk: the session's working directory, and a fresh HOME per run whose
`.claude` is the CLI's config directory (`CLAUDE_CONFIG_DIR`). The conversation itself is not
on disk: the SDK loads it from the store when the run resumes (`agent_resume.py`)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agentlog.infra.agent.recovery.leftovers import HOME_PREFIX
from agentlog.infra.private_files import private_directory
from agentlog.infra.sessions.workspaces import directory_name, note_session


@dataclass(frozen=True)
class RunHome:
    """Where the CLI of one run works: `cwd`, its `home`, and its config directory."""

    cwd: str
    home: Path

    @property
    def config_dir(self) -> Path:
        """The CLI's config directory when it does not resume (a resume gets the SDK's own,
        holding the transcript it loaded). Named explicitly: the SDK otherwise resolves where
        the CLI writes from the *server's* ~/.claude, and drops every mirrored line."""
        return self.home / ".claude"


def prepare_run_home(
    workspace_root: Path,
    run_home_root: Path,
    session_id: str,
    run_id: str,
    template: Path | None = None,
) -> RunHome:
    """Create the session's working directory and the run's HOME. File I/O: run it in a
    thread. `template`: the agent's workspace template, copied into a new workspace (one
    this host has not made before: a session that moves to another host gets it there too).
    What the workspace may hold is metered while a run's tools write (workspace_meter.py)."""
    # 0700: the root's sessions are no other local user's to list or read.
    private_directory(workspace_root)
    workspace = workspace_root / directory_name(session_id)
    if template is not None and not workspace.exists():
        # Copied beside, then renamed: a workspace is never seen half-filled.
        partial = workspace.with_name(workspace.name + f".{run_id}.partial")
        shutil.copytree(template, partial, symlinks=False)
        partial.rename(workspace)
    workspace.mkdir(mode=0o700, exist_ok=True)
    note_session(workspace, session_id)  # so every host can remove it once it is deleted
    cwd = str(workspace.resolve())
    run_home_root.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{run_id}-", dir=run_home_root))
    run_home = RunHome(cwd=cwd, home=home)
    run_home.config_dir.mkdir(mode=0o700)
    return run_home
