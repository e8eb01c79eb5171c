"""Workspaces that an earlier agentlog bounded with a tmpfs mount (as root), unmounted when
their session is deleted. The workspace's limit is now metered, as any user
(workspace_meter.py): a mount needed root and kept every session's files in memory, which a
limit on by default cannot ask of a laptop."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MNT_DETACH = 2


def unbound_workspace(workspace: Path) -> None:
    """Unmount a workspace's tmpfs, if it has one (detached: a process still in it keeps what
    it has open, and nothing else sees it)."""
    if os.path.ismount(workspace):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.umount2(os.fsencode(workspace), MNT_DETACH) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"unmounting {workspace}: {os.strerror(errno)}")
