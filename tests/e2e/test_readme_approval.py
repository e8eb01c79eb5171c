"""docs/approvals.md's "Try it" walkthrough, run as written (only the port differs) against a
real `agentlog serve` on the embedded default with the scripted agent."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.doc_pages import section, shell_blocks
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def claimed_blocks() -> list[str]:
    start, answer, messages = shell_blocks(section("docs/approvals.md", "Try it"))
    return [start, answer, messages]


def run(script: str, port: int) -> str:
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_approval_walkthrough_runs_as_written(tmp_path: Path) -> None:
    start_block, answer_block, messages_block = claimed_blocks()
    create, start, show = start_block.splitlines()
    server = ServerProcess(tmp_path, {}).start()
    try:
        assert json.loads(run(create, server.port))["id"] == "approval-demo"
        started = json.loads(run(start, server.port))
        assert started["run_id"].startswith("run_")
        # "a few seconds after the start": the run asks, waits its grace, and stops.
        deadline = time.monotonic() + 60
        while True:
            session = json.loads(run(show, server.port))
            if session["status"] == "awaiting_approval" and session["active_run"] is None:
                break
            assert time.monotonic() < deadline, session
            time.sleep(0.5)
        [pending] = session["pending_approvals"]
        assert pending["tool_name"] == "mcp__demo__publish"
        assert pending["input"] == {"text": "hello world"}

        answered = json.loads(run(answer_block, server.port))
        assert answered["approved"] is True and answered["reason"] == "looks good"
        assert answered["approval_id"] == pending["approval_id"]
        assert answered["run"]["run_id"].startswith("run_")

        deadline = time.monotonic() + 60
        while True:
            body = json.loads(run(messages_block, server.port))
            assistant = body["messages"][-1]
            if assistant["metadata"]["status"] == "finished":
                break
            assert time.monotonic() < deadline, assistant
            time.sleep(0.5)
        [part] = [p for p in assistant["parts"] if p.get("toolName") == "mcp__demo__publish"]
        assert part["state"] == "output-available"
        assert part["approval"] == {
            "id": pending["approval_id"],
            "approved": True,
            "reason": "looks good",
        }
        assert "published: hello world" in str(part["output"])
        assert "published: hello world" in assistant["parts"][-1]["text"]
        assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    finally:
        server.stop()
