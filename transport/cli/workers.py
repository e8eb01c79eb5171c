"""`agentlog serve --workers N`: N processes serving one port, each a whole agentlog.

This process, the supervisor, checks the configuration once, then starts N workers: `agentlog
serve` again with the same arguments and `--worker-of i/N`. Each binds the port with
SO_REUSEPORT, so the kernel spreads new connections over them, and each is a full instance
(its own store pool, live feeds, runner). The background loops run once per deployment
through their leases (transport/background.py), whichever worker or host holds each.

SIGTERM and SIGINT are passed to every worker, which shut down gracefully as one process does
(runs cancelled, streams ended); the supervisor waits for all of them. A worker that exits by
itself makes the supervisor stop the others and exit with its code: a port served by fewer
workers than asked for is left to the service manager to restart, not limped on with. A
supervisor killed outright takes its workers with it (the kernel sends them SIGKILL:
PR_SET_PDEATHSIG), so nothing serves on behind a dead supervisor.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

# How often the supervisor looks at its workers.
_POLL_SECONDS = 0.2
# prctl(2): the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def default_workers(serves_one_process: bool) -> int:
    """Every core on a shared database; one process on a database one process serves."""
    return 1 if serves_one_process else max(1, os.cpu_count() or 1)


def parse_worker_of(raw: str) -> tuple[int, int]:
    """`i/N` as `--worker-of` carries it: this worker's index and the number of workers."""
    index, _, count = raw.partition("/")
    return int(index), int(count)


def _die_with_supervisor(supervisor: int) -> None:
    """In the worker before it runs: SIGKILL when the supervisor dies (Linux)."""
    name = ctypes.util.find_library("c")
    if name is not None:
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:  # it died before the line above took effect
        os._exit(1)


def supervise(argv: Sequence[str], workers: int) -> int:
    """Run `workers` workers of `agentlog <argv>` until a signal, or until one exits."""
    supervisor = os.getpid()
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentlog.transport.cli",
                *argv,
                "--worker-of",
                f"{i}/{workers}",
            ],
            preexec_fn=lambda: _die_with_supervisor(supervisor),
        )
        for i in range(workers)
    ]
    stopping = False

    def stop_all(signum: int, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    first_exit: int | None = None
    while any(child.poll() is None for child in children):
        ended = [child.returncode for child in children if child.returncode is not None]
        if ended and not stopping:
            first_exit = ended[0]
            print(
                f"agentlog: a worker exited ({first_exit}); stopping the others",
                file=sys.stderr,
                flush=True,
            )
            stop_all(signal.SIGTERM)
        time.sleep(_POLL_SECONDS)
    if first_exit is not None:
        return first_exit or 1
    return next((child.returncode for child in children if child.returncode), 0)
