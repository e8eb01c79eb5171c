"""What a run leaves on its host: its agent processes and its HOME, found again by run id.

A server killed with SIGKILL leaves its CLI running under init and the run's HOME on disk; the
next server on the same host that records the run abandoned (or any run winding down) clears
both. Another host finds nothing here: what a server left there waits for that host.
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


def agent_process_ids(run_id: str) -> list[int]:
    """Live processes whose environment carries this run's marker (Linux /proc; [] elsewhere)."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
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
            found.append(int(entry))
    return found


def remove_leftovers(run_id: str, run_home_root: Path) -> None:
    """End the run's agent processes still alive on this host and remove its HOME (blocking:
    call it in a thread)."""
    for pid in agent_process_ids(run_id):
        log.warning("run %s: killing leftover agent process %d", run_id, pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for home in run_home_root.glob(f"{HOME_PREFIX}{run_id}-*"):
        shutil.rmtree(home, ignore_errors=True)
