"""A run's orphan watch: a small process beside each run's CLI that ends the run's agent
processes when the server that started them dies (kill -9, OOM), instead of leaving a CLI of
~200 MB running under init until some recovery on this host finds it.

    python -m infra.agent.orphan_watch <server pid> <run id>

It polls its own parent: once the server is gone, the watch is re-parented, and it kills
every process carrying the run's marker (the CLI and its tools), then exits. The runner ends
the watch when the run winds down normally. Only the standard library is imported: the watch
starts in tens of milliseconds and stays a few MB.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from infra.agent.reaping import agent_process_ids

POLL_SECONDS = 0.5


def watch(server_pid: int, run_id: str, poll: float = POLL_SECONDS) -> None:
    while os.getppid() == server_pid:
        time.sleep(poll)
    for pid in agent_process_ids(run_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
