"""The tool gate moves into the tools' cgroup only a process of its own run: the pid comes from
the kernel (SO_PEERCRED), and one outside the run's cgroup is refused and stays where it is."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlog.infra.agent.sandbox.process_cgroup import (
    RunCgroups,
    make_run_cgroup,
    memory_hierarchy,
    pids_hierarchy,
    remove_run_cgroups,
)
from agentlog.infra.agent.sandbox.tool_gate import ToolGate

# Connects to the gate, says what it answered, then where this process now is (pids line).
CLIENT = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'join\\n')\n"
    "print(s.makefile().readline().strip())\n"
    "print([l for l in open('/proc/self/cgroup') if ':pids:' in l][0].strip())\n"
)


@pytest.fixture
def run_cgroups() -> Iterator[RunCgroups]:
    hierarchy = pids_hierarchy() if os.geteuid() == 0 else None
    if hierarchy is None:
        pytest.skip("needs root and a writable pids cgroup (the gate then moves nothing)")
    cgroups = make_run_cgroup(
        hierarchy,
        f"gate-test-{uuid.uuid4().hex[:8]}",
        processes=8,
        memory_mb=64,
        memory=memory_hierarchy(),
    )
    try:
        yield cgroups
    finally:
        remove_run_cgroups(cgroups)


async def ask(gate: Path, enter: Path | None = None) -> tuple[str, str]:
    """The gate's answer to a new process, and that process's pids cgroup afterwards;
    `enter`: a cgroup it enters first (as a run's launcher does)."""
    command = [sys.executable, "-c", CLIENT, str(gate)]
    if enter is not None:
        script = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
        command = ["/bin/sh", "-c", script, str(enter), *command]
    child = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    answer, where = out.decode().splitlines()
    return answer, where


async def test_a_process_that_is_not_the_runs_is_refused_and_not_moved(
    run_cgroups: RunCgroups, tmp_path: Path
) -> None:
    before = await asyncio.to_thread(Path("/proc/self/cgroup").read_text)
    gate = ToolGate("run-gate", run_cgroups)
    await gate.start(tmp_path / "gate.sock")
    try:
        answer, where = await ask(tmp_path / "gate.sock")
        assert answer.startswith("refused"), answer
        assert where in before.splitlines()  # where the test runs, not the run's tools
        assert run_cgroups.tool_pids() == []
        # One of the run's own (in its entry cgroup) is moved.
        answer, where = await ask(tmp_path / "gate.sock", enter=run_cgroups.entry)
    finally:
        gate.close()
    assert answer == "ok"
    assert where.endswith(f"/{run_cgroups.run.name}/tools"), where


def test_the_tools_cgroup_counts_processes_and_bounds_memory(run_cgroups: RunCgroups) -> None:
    """The tools get AGENTLOG_RUN_PROCESSES, the run that plus the CLI's headroom; memory,
    where the server may make memory cgroups, bounds the tools together."""
    assert (run_cgroups.tools / "pids.max").read_text().strip() == "8"
    assert int((run_cgroups.run / "pids.max").read_text()) > 8
    if run_cgroups.memory is not None:
        limit = "memory.max" if run_cgroups.memory == run_cgroups.tools else "memory.limit_in_bytes"
        assert int((run_cgroups.memory / limit).read_text()) == 64 * 1024 * 1024


# Checks in, says how many bytes the workspace has left, then writes 1 MB files until stopped.
WRITER = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'join\\n')\n"
    "print(s.makefile().readline().strip(), flush=True)\n"
    "for n in range(200):\n"
    "    open(f'{sys.argv[2]}/part-{n}.bin', 'wb').write(bytes(2**20)); time.sleep(0.05)\n"
)


async def test_the_meter_stops_a_command_that_writes_past_the_workspace_limit(
    tmp_path: Path,
) -> None:
    """As any user (no cgroup here): the gate answers what the workspace has left, then stops
    the command that wrote past it, and tells it why; a process it did not admit goes on."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    gate = ToolGate("run-meter", None, workspace=workspace, workspace_limit=3 * 2**20)
    await gate.start(tmp_path / "gate.sock")
    bystander = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            str(tmp_path / "gate.sock"),
            str(workspace),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await writer.communicate()
        assert bystander.returncode is None  # untouched
    finally:
        gate.close()
        bystander.kill()
        await bystander.wait()
    assert out.decode().strip() == f"ok {3 * 2**20}"
    assert writer.returncode == -9
    assert "past its limit of 3 MB (AGENTLOG_RUN_WORKSPACE_MB)" in err.decode()
    assert 3 <= len(list(workspace.iterdir())) < 200
