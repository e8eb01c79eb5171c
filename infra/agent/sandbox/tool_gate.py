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

The gate also meters the workspace (workspace_meter.py), as any user: its `ok` carries the
bytes the workspace has left, which the tool shell makes the command's largest file; and
while a command runs it measures the workspace, and stops the commands (every process of the
tools' cgroup, and each command's processes) when the workspace has grown past its limit,
saying so in the command's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import threading
import time
from pathlib import Path

from agentlog.infra.agent.sandbox import workspace_meter
from agentlog.infra.agent.sandbox.process_cgroup import RunCgroups
from agentlog.infra.agent.sandbox.socket_paths import bindable

log = logging.getLogger(__name__)

# What the tool shell sends; the answer is one line: `ok`, `ok <bytes the workspace has
# left>`, or `refused: <why>`.
JOIN = b"join\n"
# struct ucred: pid, uid, gid.
UCRED = struct.Struct("3i")
# How often the workspace is measured while a command runs (seconds): at least this often,
# and never more than a fifth of the time (a measurement walks the whole workspace: 0.7 s for
# 100,000 files, bench/tool_gate.py).
METER_SECONDS = 0.25
METER_SHARE = 0.2


def peer_pid(writer: asyncio.StreamWriter) -> int:
    """The host pid of the process that connected (the kernel's word, not the peer's)."""
    sock: socket.socket = writer.get_extra_info("socket")
    pid, _, _ = UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
    return int(pid)


class ToolGate:
    """One run's gate (see the module docstring). `cgroups`: the run's, or None where there
    are none; the gate then admits every command without moving it. `workspace` and
    `workspace_limit` (bytes): the workspace to meter, and what it may hold."""

    def __init__(
        self,
        run_id: str,
        cgroups: RunCgroups | None,
        *,
        workspace: Path | None = None,
        workspace_limit: int | None = None,
        home: Path | None = None,
    ) -> None:
        self.run_id = run_id
        self.cgroups = cgroups
        self.workspace = workspace
        self.workspace_limit = workspace_limit if workspace is not None else None
        # The run's HOME is writable too (the CLI's config and what a tool puts in ~): it is
        # held to the same limit, measured apart (the CLI's own files there are not the
        # workspace's, and the file tools' check counts the workspace alone).
        self.home = home
        self._home_measured = 0
        self.socket_path: Path | None = None
        self._server: asyncio.Server | None = None
        self._meter: asyncio.Task[None] | None = None
        # The commands admitted: host pid -> its pid namespace (a pid reused by a process
        # outside the sandbox is never stopped).
        self._commands: dict[int, int] = {}
        # Check-ins and the meter run in threads of their own, both on `_commands`.
        self._commands_lock = threading.Lock()
        self._measured = 0
        # (When, monotonic, and bytes) of the latest measurement, one tuple so a reader in
        # another thread never pairs one's time with another's bytes: the file tools' check
        # reuses it (workspace_allowance.py).
        self._figure: tuple[float, int] | None = None

    async def start(self, socket_path: Path) -> None:
        with bindable(socket_path) as name:
            self._server = await asyncio.start_unix_server(self._serve, path=name)
        os.chmod(socket_path, 0o600)  # the server's own user (the sandbox's uid maps to it)
        self.socket_path = socket_path
        if self.workspace_limit is not None:
            self._meter = asyncio.create_task(self._keep_metering(), name=f"meter-{self.run_id}")

    def close(self) -> None:
        if self._meter is not None:
            self._meter.cancel()
            self._meter = None
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
        """Move `pid` into the tools' cgroup, if it is this run's; the answer for it. File
        I/O: call it from a thread."""
        if self.cgroups is not None and not self.cgroups.in_tools(pid):
            # (One already in the tools' cgroup is a tool running the tool shell again.)
            if not self.cgroups.holds(pid):
                log.warning("tool gate: run %s: refused pid %d: not this run's", self.run_id, pid)
                return "refused: this process is not one of the run's"
            try:
                self.cgroups.move_to_tools(pid)
            except OSError as exc:
                # The tools' count is full (a fork bomb still running), or the process is gone.
                return f"refused: the tools' cgroup did not take this command: {exc.strerror}"
        if self.workspace_limit is None or self.workspace is None:
            return "ok"
        namespace = _pid_namespace(pid)
        if namespace is not None:
            with self._commands_lock:
                self._commands[pid] = namespace
        started = time.monotonic()
        self._note(started, workspace_meter.workspace_bytes(self.workspace))
        left = self.workspace_limit - self._measured
        if self.home is not None:
            self._home_measured = workspace_meter.workspace_bytes(self.home)
            left = min(left, self.workspace_limit - self._home_measured)
        return f"ok {max(0, left)}"

    def _note(self, started: float, used: int) -> None:
        self._measured = used
        self._figure = (started, used)

    def last_figure(self) -> tuple[float, int] | None:
        """The latest measurement of the workspace (when it started, monotonic; bytes)."""
        return self._figure

    async def _keep_metering(self) -> None:
        """While commands run, measure the workspace; stop them when it has grown past its
        limit. Only growth stops them: a command that starts over the limit (with no byte
        left for a file) may still remove files."""
        pause = METER_SECONDS
        while True:
            await asyncio.sleep(pause)
            started = time.monotonic()
            with contextlib.suppress(Exception):  # a meter that fails must not end the run
                await asyncio.to_thread(self.meter_once)
            took = time.monotonic() - started
            pause = max(METER_SECONDS, took * (1 - METER_SHARE) / METER_SHARE)

    def meter_once(self) -> None:
        assert self.workspace is not None and self.workspace_limit is not None
        with self._commands_lock:
            for pid in [pid for pid in self._commands if not workspace_meter.alive(pid)]:
                del self._commands[pid]
            running = bool(self._commands)
        if not running and not (self.cgroups is not None and self.cgroups.tool_pids()):
            return
        started = time.monotonic()
        used = workspace_meter.workspace_bytes(self.workspace)
        if used > self.workspace_limit and used > self._measured:
            self.stop_commands(used)
        self._note(started, used)
        if self.home is not None:
            home_used = workspace_meter.workspace_bytes(self.home)
            if home_used > self.workspace_limit and home_used > self._home_measured:
                self.stop_commands(home_used, where="the run's HOME")
            self._home_measured = home_used

    def stop_commands(self, used: int, where: str = "the workspace") -> None:
        """Stop every running command of the run (it wrote past the workspace's limit)."""
        assert self.workspace_limit is not None
        mb = 1024 * 1024
        message = (
            f"\nagentlog: stopped: {where} holds {used / mb:.1f} MB, past its limit of "
            f"{self.workspace_limit // mb} MB (AGENTLOG_RUN_WORKSPACE_MB)\n"
        )
        log.warning("tool gate: run %s: %s", self.run_id, message.strip())
        with self._commands_lock:
            admitted = dict(self._commands)
            self._commands.clear()
        commands = [
            pid
            for pid, ns in admitted.items()
            if _pid_namespace(pid) == ns  # still the process admitted, not a reused pid
        ]
        for pid in commands:
            workspace_meter.tell(pid, message)
        for _ in range(20):  # again, for what was forked meanwhile
            doomed = workspace_meter.started_by(commands)
            if self.cgroups is not None:
                doomed |= set(self.cgroups.tool_pids())
            if not doomed:
                break
            workspace_meter.kill(doomed)
            time.sleep(0.02)  # killed ones are zombies until reaped: no busy loop


def _pid_namespace(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None
