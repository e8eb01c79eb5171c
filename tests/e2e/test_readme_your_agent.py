"""docs/your-agent.md's "Try it": the example agent served by the documented command (its
variables and `agentlog serve`, as written), then the documented session and turn, against the
real CLI and the scripted model with the sandbox on. Only the port, the database file and the
path of the `agentlog` command differ; the repository's root is on PYTHONPATH, as serving it
from there puts it."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.doc_pages import section, shell_blocks
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def claimed_blocks() -> list[str]:
    serve, turn = shell_blocks(section("docs/your-agent.md", "Try it"))
    return [serve, turn]


def serve_command(block: str) -> dict[str, str]:
    """The block's variables; the block itself must be `VAR=value ... agentlog serve`."""
    words = shlex.split(block.replace("\\\n", " "))
    assert words[-2:] == ["agentlog", "serve"], words
    pairs = [word.split("=", 1) for word in words[:-2]]
    assert all(len(pair) == 2 and pair[0].startswith("AGENTLOG_") for pair in pairs), pairs
    return dict((name, value) for name, value in pairs)


def events_of(server: ServerProcess, session_id: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["curl", "-s", f"{server.url}/v1/sessions/{session_id}/events"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return list(json.loads(done.stdout)["events"])


def test_the_example_agent_serves_and_runs_as_documented(tmp_path: Path) -> None:
    serve, turn = claimed_blocks()
    environment = serve_command(serve)
    environment |= {
        "AGENTLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'agentlog.db'}",
        "AGENTLOG_WORKSPACE_DIR": str(tmp_path / "workspaces"),
        "PYTHONPATH": str(ROOT),
    }
    server = ServerProcess(tmp_path, environment).start()
    try:
        script = turn.replace("localhost:8080", f"127.0.0.1:{server.port}")
        done = subprocess.run(
            ["bash", "-ec", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        decoder = json.JSONDecoder()
        created, end = decoder.raw_decode(done.stdout)
        started, _ = decoder.raw_decode(done.stdout[end:].lstrip())
        assert (created["id"], created["agent"]) == ("ada-1", "support")
        assert started["run_id"].startswith("run_")

        deadline = time.monotonic() + 60
        while not any(e["type"] == "run_finished" for e in events_of(server, "ada-1")):
            assert time.monotonic() < deadline, events_of(server, "ada-1")
            time.sleep(0.3)
        events = events_of(server, "ada-1")
        (call,) = [e for e in events if e["type"] == "tool_call_started"]
        assert (call["tool_name"], call["input"]) == (
            "mcp__acme__lookup_order",
            {"order_id": "A-1001"},
        )
        (result,) = [e for e in events if e["type"] == "tool_call_succeeded"]
        assert result["tool_call_id"] == call["tool_call_id"]
        assert "kettle, $49.00, shipped" in json.dumps(result["output"])
        (started_event,) = [e for e in events if e["type"] == "run_started"]
        assert started_event["agent_name"] == "support"
    finally:
        server.stop()
