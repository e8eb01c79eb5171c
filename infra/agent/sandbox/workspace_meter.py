"""What a session's workspace holds, and the processes to stop when a run's tools pass its
limit (AGENTLOG_RUN_WORKSPACE_MB), for any user: the run's tool gate (tool_gate.py) uses both.

A mount of a given size would be a bound the kernel keeps, but mounting on the host needs
root and keeps the files in memory; bubblewrap could mount one inside, unprivileged, but its
content would not outlive the run. So the workspace stays a folder on disk and is metered:
each Bash command starts with its largest file (RLIMIT_FSIZE) cut to what the workspace has
left, so no single file passes the limit, and while commands run the gate measures the folder
and stops them (their processes, and what they started) once it holds more than the limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path


def workspace_bytes(folder: Path) -> int:
    """The bytes `folder`'s files take on disk (allocated blocks: a sparse file counts what
    it uses; a file with several links once), symlinks not followed. File I/O: call it from a
    thread."""
    total = 0
    seen: set[tuple[int, int]] = set()
    pending = [os.fspath(folder)]
    while pending:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if info.st_nlink > 1:
                        if (info.st_dev, info.st_ino) in seen:
                            continue
                        seen.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
    return total


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def started_by(pids: Iterable[int]) -> set[int]:
    """`pids` and every live process they started (children, theirs, ...) or that shares a
    session one of them leads (a child orphaned by a parent that exited keeps its session)."""
    roots = {pid for pid in pids if alive(pid)}
    parents: dict[int, int] = {}
    sessions: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command may hold ") " itself: the fields after the last one are fixed.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            sessions[int(entry.name)] = int(fields[3])
    found = set(roots) | {pid for pid, session in sessions.items() if session in roots}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def tell(pid: int, message: str) -> None:
    """Append `message` to what `pid` writes as its errors (the Bash call's output, which the
    CLI reads): so the tool's result says why it stopped. Best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(f"/proc/{pid}/fd/2", os.O_WRONLY | os.O_APPEND | os.O_NOCTTY)
        try:
            os.write(fd, message.encode())
        finally:
            os.close(fd)


def kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
