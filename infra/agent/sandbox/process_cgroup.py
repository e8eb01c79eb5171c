"""A run's processes bounded by the kernel when the server runs as root: a pids cgroup per run,
and one for its tools nested in it.

The tool shell sets RLIMIT_NPROC, which Linux checks per uid, and never for a process whose
real uid is the host's root: a sandbox made by root maps its uid 1000 to host uid 0, so there
the limit is not enforced (measured: 200 forks under a limit of 40). As root, the server can
make cgroups instead: each run's launcher enters a pids cgroup of its own before it starts
bubblewrap, so the CLI, its relay and every tool it runs are counted together, processes and
threads, by the kernel, and a fork past `pids.max` fails (EAGAIN) whatever uid does it.

The tools get a cgroup of their own inside the run's (`tools`, `pids.max` =
AGENTLOG_RUN_PROCESSES), so a fork bomb fills the tools' count and never the CLI's headroom:
sharing one count, the CLI could not make a thread and aborted, failing the run. The tool shell
cannot move itself (no cgroup file system in the sandbox, no capability): it asks the run's
tool gate (tool_gate.py), which checks that the asking process is this run's and moves it. The
tools' memory is bounded there too, in total (`memory.limit_in_bytes` on v1's memory
hierarchy, `memory.max` on v2), where the server may make memory cgroups.

Nothing in the sandbox can change the limits: no cgroup file system is mounted in there, and
its processes have no capability. The cgroups are removed when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What the CLI itself needs on top of the tools' AGENTLOG_RUN_PROCESSES (its threads, the
# model relay, the shell it runs a command in): the cgroup counts them all.
CLI_HEADROOM = 64
PREFIX = "agentlog-run-"
# The run's children: its tools, and (cgroup v2 only) the CLI's leaf (see make_run_cgroup).
TOOLS, CLI = "tools", "cli"


def pids_hierarchy() -> Path | None:
    """The cgroup, under the pids controller, that this process is in and may make children
    of: cgroup v1's pids hierarchy, or cgroup v2 where pids is enabled for children; None when
    there is none, or it is not writable (not root, a read-only /sys/fs/cgroup)."""
    return controller_hierarchy("pids")


def memory_hierarchy() -> Path | None:
    """The same for the memory controller (where the tools' memory cgroup is made)."""
    return controller_hierarchy("memory")


def controller_hierarchy(controller: str) -> Path | None:
    try:
        memberships = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in memberships:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            mount = _mount_point(
                mounts, lambda kind, options: kind == "cgroup" and controller in options
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
                if controller in (base / "cgroup.subtree_control").read_text().split():
                    return _writable(base)
    return None


def is_v2(cgroup: Path) -> bool:
    return (cgroup / "cgroup.subtree_control").exists()


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


@dataclass(frozen=True)
class RunCgroups:
    """One run's cgroups. `run` counts everything (the tools' `processes` plus the CLI's
    headroom); `entry` is where the launcher puts itself, and so bubblewrap and the CLI (the
    run's own cgroup on v1; on v2 a leaf of it, since v2 lets a cgroup that hands controllers
    to its children hold no process itself); `tools` is where the tool gate moves each Bash
    command (`pids.max` = `processes`); `memory`, where there is one, bounds the tools' memory
    together (on v2 the same folder as `tools`)."""

    run: Path
    entry: Path
    tools: Path
    memory: Path | None = None
    # The run's memory-hierarchy folder on v1 (a parent of `memory`), removed with the run.
    memory_run: Path | None = None

    def holds(self, pid: int) -> bool:
        """Whether `pid` is one of this run's processes outside its tools' cgroup (the CLI
        and what it starts itself): only those may be moved into the tools' cgroup."""
        return str(pid) in _procs(self.entry)

    def in_tools(self, pid: int) -> bool:
        return str(pid) in _procs(self.tools)

    def move_to_tools(self, pid: int) -> None:
        """Move `pid` (one process, its threads with it) into the tools' cgroups. Raises
        OSError when the kernel refuses (e.g. the tools' count is full)."""
        (self.tools / "cgroup.procs").write_text(str(pid))
        if self.memory is not None and self.memory != self.tools:
            (self.memory / "cgroup.procs").write_text(str(pid))

    def tool_pids(self) -> list[int]:
        return [int(pid) for pid in _procs(self.tools)]


def _procs(cgroup: Path) -> list[str]:
    try:
        return (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return []


def make_run_cgroup(
    hierarchy: Path,
    run_id: str,
    processes: int,
    *,
    memory_mb: int | None = None,
    memory: Path | None = None,
) -> RunCgroups:
    """The cgroups for one run: its processes and threads together may number `processes`
    plus the CLI's headroom, its tools' `processes` (and, given the memory `hierarchy` v1's
    one, or on v2 where memory is enabled, `memory_mb` in all). Raises OSError when the
    kernel refuses them."""
    run = hierarchy / f"{PREFIX}{run_id}"
    run.mkdir(exist_ok=True)
    (run / "pids.max").write_text(str(processes + CLI_HEADROOM))
    tools = run / TOOLS
    if is_v2(run):
        # Children get controllers only from a cgroup with no process of its own: done
        # before the launcher enters (into the CLI's leaf).
        wanted = {"pids"} | ({"memory"} if memory_mb is not None else set())
        offered = set((run / "cgroup.controllers").read_text().split())
        enable = " ".join(f"+{name}" for name in sorted(wanted & offered))
        (run / "cgroup.subtree_control").write_text(enable)
        entry = run / CLI
        entry.mkdir(exist_ok=True)
        tools.mkdir(exist_ok=True)
        (tools / "pids.max").write_text(str(processes))
        if memory_mb is not None and (tools / "memory.max").exists():
            (tools / "memory.max").write_text(str(memory_mb * 1024 * 1024))
            if (tools / "memory.swap.max").exists():  # swap would let them past it
                (tools / "memory.swap.max").write_text("0")
            return RunCgroups(run=run, entry=entry, tools=tools, memory=tools)
        return RunCgroups(run=run, entry=entry, tools=tools)
    tools.mkdir(exist_ok=True)
    (tools / "pids.max").write_text(str(processes))
    if memory_mb is None or memory is None or is_v2(memory):
        return RunCgroups(run=run, entry=run, tools=tools)
    memory_run = memory / f"{PREFIX}{run_id}"
    memory_run.mkdir(exist_ok=True)
    memory_tools = memory_run / TOOLS
    memory_tools.mkdir(exist_ok=True)
    (memory_tools / "memory.limit_in_bytes").write_text(str(memory_mb * 1024 * 1024))
    return RunCgroups(run=run, entry=run, tools=tools, memory=memory_tools, memory_run=memory_run)


def remove_run_cgroups(cgroups: RunCgroups, attempts: int = 20) -> bool:
    """Remove a run's cgroups, killing what is left in them (the run is over). False when
    one is still busy after `attempts` tries."""
    removed = True
    for cgroup in (cgroups.memory_run, cgroups.run):
        if cgroup is not None:
            removed = remove_run_cgroup(cgroup, attempts) and removed
    return removed


def remove_run_cgroup(cgroup: Path, attempts: int = 20) -> bool:
    """Remove a run's cgroup and its children, killing what is left in them (the run is
    over: bubblewrap's processes are ending). False when it is still busy after `attempts`
    tries."""
    for _ in range(attempts):
        for child in (cgroup / TOOLS, cgroup / CLI):
            with contextlib.suppress(OSError):
                child.rmdir()
        try:
            cgroup.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            pass
        for folder in (cgroup, cgroup / TOOLS, cgroup / CLI):
            for pid in _procs(folder):
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
                for child in (cgroup / TOOLS, cgroup / CLI):
                    with contextlib.suppress(FileNotFoundError):
                        child.rmdir()
                cgroup.rmdir()
