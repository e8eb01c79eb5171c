"""docs/branches-and-forks.md's "Try a regenerate" walkthrough, run as written (only the port
and the database file differ) against a real `agentlog serve` with the scripted agent."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.doc_pages import section, shell_blocks
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def claimed_blocks() -> list[str]:
    first, second, replace, show = shell_blocks(
        section("docs/branches-and-forks.md", "Try a regenerate")
    )
    return [first, second, replace, show]


def run(script: str, port: int, database_url: str) -> str:
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    result = subprocess.run(
        ["bash", "-ec", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,  # the commands use .venv/bin/agentlog
        env={**os.environ, "AGENTLOG_DATABASE_URL": database_url},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_values(text: str) -> list:  # type: ignore[type-arg]
    """The JSON documents curl printed one after another (curl adds no newline)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def wait_idle(server: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(f"{server.url}/v1/sessions/rewind-demo", timeout=10) as r:
            session = json.loads(r.read())
        if session["status"] == "idle" and session["active_run"] is None:
            return
        assert time.monotonic() < deadline, session
        time.sleep(0.3)


def test_the_rewind_walkthrough_runs_as_written(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'agentlog.db'}"
    first_block, second_block, replace_block, show_block = claimed_blocks()
    server = ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": database_url}).start()
    try:
        created, first = json_values(run(first_block, server.port, database_url))
        assert created["id"] == "rewind-demo"
        assert first["run_id"].startswith("run_")
        wait_idle(server)
        second = json.loads(run(second_block, server.port, database_url))["run_id"]
        wait_idle(server)
        replaced = json.loads(run(replace_block, server.port, database_url))["run_id"]
        wait_idle(server)
        shown = run(show_block, server.port, database_url)
    finally:
        server.stop()
    # curl's JSON, with no newline after it, then inspect's lines.
    body, end = json.JSONDecoder().raw_decode(shown)
    messages = body["messages"]
    inspected = shown[end:].strip().splitlines()
    assert [m["id"] for m in messages][2:] == [f"{replaced}:user", replaced]
    assert messages[-1]["parts"][-1]["text"] == "You asked me to remember the number 41."
    kinds = [line.split()[3] for line in inspected]
    assert kinds == ["run_started", "run_started", "conversation_rewound", "run_started"]
    assert f"from message {second}:user" in inspected[2]
