"""The README and its docs stay true: the set-up commands, the event and configuration tables,
and the health check, checked against the code and a real `agentlog serve`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agentlog.domain.events import EVENT_TYPES
from agentlog.transport.settings import describe
from tests.conftest import ROOT
from tests.e2e.doc_pages import read, section, shell_blocks

AGENTLOG = Path(sys.executable).with_name("agentlog")


def set_up_blocks() -> list[str]:
    serve, test = shell_blocks(section("README.md", "Set up"))
    return [serve, test]


def health_block() -> str:
    (block,) = shell_blocks(section("docs/operations.md", "Is it up?"))
    return block


def claimed_blocks() -> list[str]:
    return [*set_up_blocks(), health_block()]


def test_the_readme_has_exactly_two_set_up_commands_and_ci_runs_the_test_one() -> None:
    serve, test = set_up_blocks()
    assert serve.endswith(".venv/bin/agentlog serve") and "venv" in serve
    assert test.endswith(".venv/bin/pytest") and "[dev]" in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_lint_command_in_the_docs_is_the_one_ci_runs() -> None:
    assert "`bash .ci/lint`" in read("docs/development.md")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(line.endswith("&& bash .ci/lint") for line in ci)


def test_the_event_table_lists_every_event_type() -> None:
    listed = re.findall(r"^\| `([a-z_]+)` \|", section("docs/events.md", "Types"), flags=re.M)
    assert sorted(listed) == sorted(EVENT_TYPES)


def test_the_configuration_table_matches_the_settings() -> None:
    page = read("docs/configuration.md")
    rows = dict(re.findall(r"^\| `(AGENTLOG_[A-Z_]+)` \| ([^|]+) \|", page, flags=re.M))
    expected = {
        var: ("(unset)" if default == "None" else f"`{default}`") for var, default in describe()
    }
    assert {k: v.strip() for k, v in rows.items()} == expected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_agentlog_serve_answers_healthz_on_the_embedded_default(tmp_path: Path) -> None:
    """The README's first command, from a fresh directory: SQLite, nothing else configured; then
    docs/operations.md's health check, run as written (only the port differs)."""
    port = free_port()
    env = {"PATH": str(AGENTLOG.parent) + ":/usr/bin:/bin"}
    proc = subprocess.Popen(
        [str(AGENTLOG), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.1)
        assert body is not None, "agentlog serve never answered /healthz"
        command, comment = health_block().splitlines()
        done = subprocess.run(
            ["bash", "-c", command.replace("127.0.0.1:8080", f"127.0.0.1:{port}")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        documented = json.loads(comment.removeprefix("# "))
        assert body["status"] == documented["status"] == "ok"
        assert body.keys() == documented.keys()
        assert body["database"].keys() == documented["database"].keys()
        assert body["writes"].keys() == documented["writes"].keys()
        assert (tmp_path / "agentlog.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGENTLOG_PORT": "eighty"}, "AGENTLOG_PORT='eighty' is not a valid int"),
        ({"AGENTLOG_PORT": "70000"}, "not a port number"),
        ({"AGENTLOG_DATABASE_URL": "mysql://x/y"}, "unsupported database URL scheme"),
        ({"AGENTLOG_DATABASE_URL": "sqlite://relative.db"}, "must look like sqlite:///"),
        ({"AGENTLOG_REDIS_URL": "localhost:6379"}, "must start with redis://"),
        ({"AGENTLOG_CACHE_BYTES": "1000"}, "AGENTLOG_CACHE_BYTES=1000 is below the minimum"),
        ({"AGENTLOG_SHUTDOWN_SECONDS": "0"}, "AGENTLOG_SHUTDOWN_SECONDS=0.0 must be between"),
    ],
)
def test_malformed_configuration_is_one_clear_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [str(AGENTLOG), "migrate"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_creates_the_schema_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    for _ in range(2):  # idempotent
        result = subprocess.run(
            [str(AGENTLOG), "--database-url", postgres_url, "migrate"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "schema is up to date" in result.stdout
