"""A run's orphan watch: a small process beside each run's CLI that ends the run's agent
processes when the server that started them dies (kill -9, OOM), instead of leaving a CLI of
~200 MB running under init until some recovery on this host finds it.

    python -m agentlog.infra.agent.recovery.orphan_watch <server pid> <run id> <run home root>

It polls its own parent: once the server is gone, the watch is re-parented, and it kills
every process carrying the run's marker (the CLI and its tools), removes the SDK's resume
directory the run noted in its HOME (it holds the session's transcript), then exits. The runner ends
the watch when the run winds down normally. Only the standard library is imported: the watch
starts in tens of milliseconds and stays a few MB.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from agentlog.infra.agent.recovery.leftovers import (
    HOME_PREFIX,
    end_agent_processes,
    remove_noted_resume_directories,
)

POLL_SECONDS = 0.5


def watch(server_pid: int, run_id: str, run_home_root: Path, poll: float = POLL_SECONDS) -> None:
    while os.getppid() == server_pid:
        time.sleep(poll)
    end_agent_processes(run_id)
    for home in run_home_root.glob(f"{HOME_PREFIX}{run_id}-*"):
        remove_noted_resume_directories(home)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
