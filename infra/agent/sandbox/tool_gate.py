"""Where a run's tool shell checks in before it runs a Bash command: a unix socket per run,
bound into the sandbox, served by the server.

The tool shell has no cgroup file system and no capability, so it cannot put itself in the
tools' cgroup (process_cgroup.py). It connects here and waits for the answer; the gate reads
the connecting process's pid as the host sees it (`SO_PEERCRED`: the kernel translates pids
across namespaces, so nothing the process says is believed), checks that the pid is one of
this run's (in the run's cgroup, outside its tools'), moves it into the tools' cgroup, and
answers `ok`. Anything else is refused: a pid that is not this run's is never moved.

Where the server has no cgroups to use (not root, no writable pids cgroup) the gate answers
`ok` without moving anything, and the tools run as before: bounded by their rlimits only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from pathlib import Path

from agentlog.infra.agent.sandbox.process_cgroup import RunCgroups
from agentlog.infra.agent.sandbox.socket_paths import bindable

log = logging.getLogger(__name__)

# What the tool shell sends; the answer is one line: `ok` or `refused <why>`.
JOIN = b"join\n"
# struct ucred: pid, uid, gid.
UCRED = struct.Struct("3i")


def peer_pid(writer: asyncio.StreamWriter) -> int:
    """The host pid of the process that connected (the kernel's word, not the peer's)."""
    sock: socket.socket = writer.get_extra_info("socket")
    pid, _, _ = UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
    return int(pid)


class ToolGate:
    """One run's gate (see the module docstring). `cgroups`: the run's, or None where there
    are none; the gate then admits every command without moving it."""

    def __init__(self, run_id: str, cgroups: RunCgroups | None) -> None:
        self.run_id = run_id
        self.cgroups = cgroups
        self.socket_path: Path | None = None
        self._server: asyncio.Server | None = None

    async def start(self, socket_path: Path) -> None:
        with bindable(socket_path) as name:
            self._server = await asyncio.start_unix_server(self._serve, path=name)
        os.chmod(socket_path, 0o600)  # the server's own user (the sandbox's uid maps to it)
        self.socket_path = socket_path

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.socket_path is not None:
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            asked = await asyncio.wait_for(reader.readline(), timeout=30)
            if asked != JOIN:
                answer = "refused: not a request this gate knows"
            else:
                answer = await asyncio.to_thread(self.admit, peer_pid(writer))
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()

    def admit(self, pid: int) -> str:
        """Move `pid` into the tools' cgroup, if it is this run's; the answer for it."""
        if self.cgroups is None:
            return "ok"
        if self.cgroups.in_tools(pid):
            return "ok"  # a tool that runs the tool shell again: it is where it belongs
        if not self.cgroups.holds(pid):
            log.warning("tool gate: run %s: refused pid %d: not this run's", self.run_id, pid)
            return "refused: this process is not one of the run's"
        try:
            self.cgroups.move_to_tools(pid)
        except OSError as exc:
            # The tools' count is full (a fork bomb still running), or the process is gone.
            return f"refused: the tools' cgroup did not take this command: {exc.strerror}"
        return "ok"
