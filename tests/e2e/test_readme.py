"""The README stays true: its commands, tables and examples are checked here."""

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

README = (ROOT / "README.md").read_text()
AGENTLOG = Path(sys.executable).with_name("agentlog")


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def test_the_readme_has_exactly_two_set_up_commands_and_ci_runs_the_test_one() -> None:
    setup = README.split("## Set up", 1)[1].split("## Architecture", 1)[0]
    commands = [b.strip() for b in re.findall(r"```sh\n(.*?)```", setup, flags=re.S)]
    serve, test, *examples = commands
    assert serve.endswith("agentlog serve") and "venv" in serve
    assert test.endswith(".venv/bin/pytest") and "[dev]" in test
    assert all(e.startswith("curl") for e in examples)
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_event_table_lists_every_event_type() -> None:
    listed = re.findall(r"^\| `([a-z_]+)` \|", README.split("## Events", 1)[1], flags=re.M)
    assert sorted(listed) == sorted(EVENT_TYPES)


def test_the_configuration_table_matches_the_settings() -> None:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(AGENTLOG_[A-Z_]+)` \| ([^|]+) \|", section, flags=re.M))
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
    """The README's first command, from a fresh directory: SQLite, nothing else configured."""
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
        documented = json.loads(re.search(r"# (\{\"status\".*\})", README).group(1))  # type: ignore[union-attr]
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
