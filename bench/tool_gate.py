"""What the tool gate adds to each Bash command: the check-in (connect, the gate measures the
workspace and, as root, moves the caller into the tools' cgroup, answers), against the
workspace's size in files; and one measurement of the meter, which runs four times a second
while commands run; and the check of a file tool's call (a Write) against the workspace's
limit (workspace_allowance.py): the first, which measures, and the next, which reuses that
measurement for a while (what each Write of a burst costs).

    .venv/bin/python bench/tool_gate.py [--files 0,1000,10000,100000] [--repeat 20]

The caller is a thread of this process and the gate has no cgroups (no move is timed: that
is one write to `cgroup.procs`). Prints the median of `--repeat` check-ins and measurements
per size. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentlog.infra.agent.sandbox.tool_gate import ToolGate
from agentlog.infra.agent.sandbox.workspace_allowance import WorkspaceAllowance
from agentlog.infra.agent.sandbox.workspace_meter import workspace_bytes


def check_in(path: Path) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
        gate.connect(str(path))
        gate.sendall(b"join\n")
        return gate.makefile("rb").readline().decode().strip()


def fill(workspace: Path, files: int) -> None:
    for n in range(files):
        folder = workspace / f"d{n // 1000}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{n}.txt").write_bytes(b"x" * 100)


async def measure(files: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        workspace = Path(directory) / "workspace"
        workspace.mkdir()
        fill(workspace, files)
        gate = ToolGate("bench", None, workspace=workspace, workspace_limit=2048 * 2**20)
        socket_path = Path(directory) / "gate.sock"
        await gate.start(socket_path)
        try:
            check_ins, meters, writes, reused = [], [], [], []
            write = {"content": "a line of the model's\n"}
            for _ in range(repeat):
                started = time.perf_counter()
                answer = await asyncio.to_thread(check_in, socket_path)
                check_ins.append(time.perf_counter() - started)
                assert answer.startswith("ok"), answer
                started = time.perf_counter()
                workspace_bytes(workspace)
                meters.append(time.perf_counter() - started)
                allowance = WorkspaceAllowance()
                allowance.arm(workspace, 2048 * 2**20)
                for timings in (writes, reused):
                    started = time.perf_counter()
                    assert allowance.refusal("Write", write) is None
                    timings.append(time.perf_counter() - started)
        finally:
            gate.close()
    print(
        f"{files:>8} files  check-in {statistics.median(check_ins) * 1000:8.2f} ms"
        f"  one measurement {statistics.median(meters) * 1000:8.2f} ms"
        f"  Write check {statistics.median(writes) * 1000:8.2f} ms"
        f" (reused {statistics.median(reused) * 1000:6.3f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="0,1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for files in (int(n) for n in args.files.split(",")):
        asyncio.run(measure(files, args.repeat))


if __name__ == "__main__":
    main()
