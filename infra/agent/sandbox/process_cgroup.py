"""A run's processes bounded by the kernel when the server runs as root: a pids cgroup per run.

The tool shell sets RLIMIT_NPROC, which Linux checks per uid, and never for a process whose
real uid is the host's root: a sandbox made by root maps its uid 1000 to host uid 0, so there
the limit is not enforced (measured: 200 forks under a limit of 40). As root, the server can
make cgroups instead: each run's launcher enters a pids cgroup of its own before it starts
bubblewrap, so the CLI, its relay and every tool it runs are counted together, processes and
threads, by the kernel, and a fork past `pids.max` fails (EAGAIN) whatever uid does it.

Nothing in the sandbox can change the limit: no cgroup file system is mounted in there, and
its processes have no capability. The cgroup is removed when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

# What the CLI itself needs on top of the tools' AGENTLOG_RUN_PROCESSES (its threads, the
# model relay, the shell it runs a command in): the cgroup counts them all.
CLI_HEADROOM = 64
PREFIX = "agentlog-run-"


def pids_hierarchy() -> Path | None:
    """The cgroup, under the pids controller, that this process is in and may make children
    of: cgroup v1's pids hierarchy, or cgroup v2 where pids is enabled for children; None when
    there is none, or it is not writable (not root, a read-only /sys/fs/cgroup)."""
    try:
        memberships = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in memberships:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            mount = _mount_point(
                mounts, lambda kind, options: kind == "cgroup" and "pids" in options
            )
            if mount is not None:
                return _writable(mount / path.lstrip("/"))
    for line in memberships:
        if line.startswith("0::"):
            mount = _mount_point(mounts, lambda kind, options: kind == "cgroup2")
            if mount is None:
                continue
            base = mount / line[3:].lstrip("/")
            with contextlib.suppress(OSError):
                if "pids" in (base / "cgroup.subtree_control").read_text().split():
                    return _writable(base)
    return None


def _mount_point(mounts: list[str], wanted: Callable[[str, list[str]], bool]) -> Path | None:
    for line in mounts:
        fields = line.split()
        separator = fields.index("-")
        kind, options = fields[separator + 1], fields[separator + 3].split(",")
        if wanted(kind, options):
            return Path(fields[4])
    return None


def _writable(path: Path) -> Path | None:
    return path if path.is_dir() and os.access(path, os.W_OK) else None


def make_run_cgroup(hierarchy: Path, run_id: str, processes: int) -> Path:
    """A cgroup for one run, whose processes and threads together may number `processes`
    plus the CLI's headroom. Raises OSError when the kernel refuses it."""
    cgroup = hierarchy / f"{PREFIX}{run_id}"
    cgroup.mkdir(exist_ok=True)
    (cgroup / "pids.max").write_text(str(processes + CLI_HEADROOM))
    return cgroup


def remove_run_cgroup(cgroup: Path, attempts: int = 20) -> bool:
    """Remove a run's cgroup, killing what is left in it (the run is over: bubblewrap's
    processes are ending). False when it is still busy after `attempts` tries."""
    for _ in range(attempts):
        try:
            cgroup.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            pass
        with contextlib.suppress(OSError):
            for pid in (cgroup / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)
    return False


def leftover_run_cgroups(hierarchy: Path) -> list[Path]:
    """Run cgroups of this hierarchy (an earlier server's, or ones still busy at the end)."""
    with contextlib.suppress(OSError):
        return sorted(hierarchy.glob(f"{PREFIX}*"))
    return []


def sweep_empty_run_cgroups(hierarchy: Path, older_than_seconds: float = 300) -> None:
    """Remove the run cgroups a server that died left behind. Only empty ones, so another
    server's live run (on this host, of this or another deployment) is never touched (rmdir
    refuses a cgroup with a process in it), and only old ones: a run's cgroup is empty from
    when it is made until its launcher enters it."""
    now = time.time()
    for cgroup in leftover_run_cgroups(hierarchy):
        with contextlib.suppress(OSError):
            if now - cgroup.stat().st_mtime > older_than_seconds:
                cgroup.rmdir()
