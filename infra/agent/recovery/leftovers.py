"""What a run leaves on its host: its agent processes, its HOME and the SDK's resume
directory, found again by run id.

A server killed with SIGKILL leaves its CLI running under init, the run's HOME on disk, and,
when the run resumed, the `claude-resume-*` directory the SDK loaded the transcript into (the
SDK removes it only when the client disconnects). The run's orphan watch, or the next server on
the same host that records the run abandoned (or any run winding down), clears them. Another
host finds nothing here: what a server left there waits for that host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path

log = logging.getLogger(__name__)

# Set in the CLI's environment; its children inherit it, so /proc tells which are a run's.
# Not AGENTLOG_*: nothing of that prefix enters a run's (minimal) environment.
RUN_MARKER = "AGENT_RUN_ID"
# A run's HOME is `<run_home_root>/agentlog-<run id>-<random>`: found again by run id.
HOME_PREFIX = "agentlog-"
# The SDK's `tempfile.mkdtemp(prefix=...)` for a store-backed resume (session_resume.py).
RESUME_PREFIX = "claude-resume-"
# In a run's HOME: the resume directory its CLI uses, written once the CLI is up, so whoever
# clears the run after a crash (its orphan watch, recovery) finds it: the sandbox ends with its
# server, and then no process is left to tell.
RESUME_NOTE = ".agentlog-resume-directory"


def agent_process_ids(run_id: str) -> list[int]:
    """Live processes whose environment carries this run's marker (Linux /proc; [] elsewhere)."""
    return list(_agent_processes(run_id))


def resume_directories(run_id: str) -> set[Path]:
    """The SDK's resume directories the run's live processes use (their CLAUDE_CONFIG_DIR)."""
    found = set()
    for variables in _agent_processes(run_id).values():
        for variable in variables:
            if variable.startswith(b"CLAUDE_CONFIG_DIR="):
                path = Path(os.fsdecode(variable.split(b"=", 1)[1]))
                if path.name.startswith(RESUME_PREFIX):
                    found.add(path)
    return found


def note_resume_directory(run_id: str, home: Path) -> None:
    """Write down, in the run's HOME, the resume directory its live CLI uses (if any)."""
    directories = resume_directories(run_id)
    if directories:
        (home / RESUME_NOTE).write_text("".join(f"{d}\n" for d in sorted(directories)))


def remove_noted_resume_directories(home: Path) -> None:
    """Remove the resume directories noted in a run's HOME (only the SDK's own)."""
    try:
        noted = (home / RESUME_NOTE).read_text().splitlines()
    except OSError:
        return
    for line in noted:
        directory = Path(line)
        if directory.is_absolute() and directory.name.startswith(RESUME_PREFIX):
            shutil.rmtree(directory, ignore_errors=True)


def end_agent_processes(run_id: str) -> None:
    """Kill the run's agent processes, then remove the resume directory they used."""
    directories = resume_directories(run_id)
    for pid in agent_process_ids(run_id):
        log.warning("run %s: killing leftover agent process %d", run_id, pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def _agent_processes(run_id: str) -> dict[int, list[bytes]]:
    marker = f"{RUN_MARKER}={run_id}".encode()
    found: dict[int, list[bytes]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in variables and state != b"Z":
            found[int(entry)] = variables
    return found


def remove_leftovers(run_id: str, run_home_root: Path) -> None:
    """End the run's agent processes still alive on this host and remove its HOME and its
    resume directory (blocking: call it in a thread)."""
    end_agent_processes(run_id)
    for home in run_home_root.glob(f"{HOME_PREFIX}{run_id}-*"):
        remove_noted_resume_directories(home)
        shutil.rmtree(home, ignore_errors=True)
