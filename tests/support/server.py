"""Run `agentlog serve` as a real OS process, as a user would, for tests that kill or restart it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

AGENTLOG = Path(sys.executable).with_name("agentlog")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One `agentlog serve` process; `start()` returns once /healthz answers."""

    def __init__(self, cwd: Path, env: dict[str, str], port: int | None = None) -> None:
        self.cwd = cwd
        self.env = {**os.environ, **env}
        # One process, which these tests kill, signal and inspect as the server; on PostgreSQL
        # `serve` would otherwise start one worker per core (tests/e2e/test_serve_workers.py).
        self.env.setdefault("AGENTLOG_WORKERS", "1")
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cwd / f"server-{self.port}.log"
        self.args: list[str] = []  # more `agentlog serve` flags

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [str(AGENTLOG), "serve", "--port", str(self.port), *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agentlog serve exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if json.loads(response.read())["status"] == "ok":
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"agentlog serve never became healthy: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown hooks run."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
