"""Private PostgreSQL and Redis servers that a fault test may restart, stop and kill.

The machine's shared servers (5432 / 6379) are never touched: each test gets its own cluster
in a temp dir on a free port, and its own redis-server, and stops them by pid.
initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.server import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    return str(PG_BIN / name)


def postgres_available() -> bool:
    return Path(_pg_tool("initdb")).exists() and Path(_pg_tool("pg_ctl")).exists()


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_and_wait(pid: int, timeout: float = 10) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)


class PrivatePostgres:
    """A PostgreSQL cluster of our own: `start()`, `stop(mode)`, `restart(mode)`, `kill()`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agentlog-fault-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(
                _pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                "--no-sync",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=100"
        )
        self._run(
            _pg_tool("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and _alive(pid)

    def kill(self) -> None:
        """Always safe (in a finally): ends the postmaster by its pid, then removes the files."""
        pid = self.pid()
        if pid is not None and _alive(pid):
            with contextlib.suppress(subprocess.SubprocessError):
                self._run(
                    _pg_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                    check=False,
                )  # fmt: skip
            if _alive(pid):
                _kill_and_wait(pid)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server of our own on a free port, no persistence."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agentlog-fault-redis-"))
        self.pidfile = self.dir / "redis.pid"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        subprocess.run(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(self.pidfile),
                "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"),
            ],
            check=True,
            timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if probe.stdout.strip() == "PONG":
                return self
            time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        pid = self.pid()
        if pid is not None and _alive(pid):
            _kill_and_wait(pid)
        shutil.rmtree(self.dir, ignore_errors=True)
