"""docs/branches-and-forks.md's "Try a fork" walkthrough, run as written (only the port, and
the path of the `agentlog` command, differ) against a real `agentlog serve` on the embedded
default with the scripted agent, from the server's directory."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.doc_pages import section, shell_blocks
from tests.support.server import AGENTLOG, ServerProcess

pytestmark = pytest.mark.slow


def claimed_blocks() -> list[str]:
    turns, second_turn, forking, continuing = shell_blocks(
        section("docs/branches-and-forks.md", "Try a fork")
    )
    return [turns, second_turn, forking, continuing]


def run(script: str, server: ServerProcess) -> str:
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")
    script = script.replace(".venv/bin/agentlog", str(AGENTLOG))
    done = subprocess.run(
        ["bash", "-ec", script], capture_output=True, text=True, timeout=60, cwd=server.cwd
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def session(server: ServerProcess, session_id: str) -> dict[str, Any]:
    shown = run(f"curl -s http://127.0.0.1:8080/v1/sessions/{session_id}", server)
    return dict(json.loads(shown))


def wait_idle(server: ServerProcess, session_id: str, runs: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        shown = session(server, session_id)
        if shown["runs"] == runs and shown["active_run"] is None and shown["status"] == "idle":
            return
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)


def test_the_fork_walkthrough_runs_as_written(tmp_path: Path) -> None:
    turns, second_turn, forking, continuing = claimed_blocks()
    server = ServerProcess(tmp_path, {}).start()
    try:
        create, start = turns.splitlines()
        created, started = json.loads(run(create, server)), json.loads(run(start, server))
        assert created["id"] == "fork-demo" and started["run_id"].startswith("run_")
        wait_idle(server, "fork-demo", 1)
        end_of_turn_1 = session(server, "fork-demo")["head"]
        assert json.loads(run(second_turn, server))["run_id"].startswith("run_")
        wait_idle(server, "fork-demo", 2)

        # One script (the lines share $AT): curl's JSON, with no newline, then the command's.
        output = run(forking, server)
        fork, end = json.JSONDecoder().raw_decode(output)
        printed = output[end:].strip()
        assert (fork["id"], fork["head"], fork["runs"]) == ("fork-demo-2", end_of_turn_1 + 1, 1)
        assert printed == (
            f"forked session fork-demo at seq {end_of_turn_1} as fork-demo-3: {end_of_turn_1} "
            f"events copied (seqs 1-{end_of_turn_1}), session_forked at seq {end_of_turn_1 + 1}"
        )
        assert session(server, "fork-demo-3")["head"] == end_of_turn_1 + 1

        start_line, messages_line = continuing.splitlines()
        assert json.loads(run(start_line, server))["run_id"].startswith("run_")
        wait_idle(server, "fork-demo-2", 2)
        messages = json.loads(run(messages_line, server))["messages"]
        said = [p["text"] for m in messages for p in m["parts"] if p["type"] == "text"]
        assert said[0] == "Please remember the number 42"
        assert said[-1] == "You asked me to remember the number 42."
        assert "Please remember the number 7" not in said
    finally:
        server.stop()
