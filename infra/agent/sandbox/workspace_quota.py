"""A session's workspace bounded in total bytes (AGENTLOG_RUN_WORKSPACE_MB): a tmpfs of that
size mounted on it, so the kernel refuses a write past it (ENOSPC) whatever tool writes, in
however many files or processes.

The file-size limit (RLIMIT_FSIZE) bounds each file, not how many a tool writes, and a check
that measures the folder from time to time is always one burst of writes late. A mount is a
bound, and bubblewrap binds the workspace into the sandbox as it is, mount and all. Mounting
on the host needs root, so an ordinary user's server has no quota (it says so at start). The
mount lives as long as the workspace: `remove_workspace` unmounts it when the session goes, and
a server that restarts finds it still there. A tmpfs lives in memory (and swap), as `/tmp`
often does: the quota is also what a session may hold of it.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2


def can_bound_workspaces() -> bool:
    return os.geteuid() == 0


def bound_workspace(workspace: Path, megabytes: int) -> bool:
    """Mount a tmpfs of `megabytes` on an empty workspace (root only); True when it is
    bounded, now or already. A workspace that holds files from before the quota was set is
    left as it is (a mount would hide them)."""
    if os.path.ismount(workspace):
        return True
    if not can_bound_workspaces() or any(workspace.iterdir()):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    options = f"size={megabytes}m,mode=0700".encode()
    done = libc.mount(b"tmpfs", os.fsencode(workspace), b"tmpfs", MS_NOSUID | MS_NODEV, options)
    if done != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mounting the workspace quota on {workspace}: {os.strerror(errno)}")
    return True


def unbound_workspace(workspace: Path) -> None:
    """Unmount a workspace's tmpfs, if it has one (detached: a process still in it keeps what
    it has open, and nothing else sees it)."""
    if os.path.ismount(workspace):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.umount2(os.fsencode(workspace), MNT_DETACH) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"unmounting {workspace}: {os.strerror(errno)}")
