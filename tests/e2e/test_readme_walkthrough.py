"""The README's "Try it" commands, then docs/http-api.md's "Reading a session" on the same
session, run as written (only the port differs) against a real `agentlog serve` on the embedded
default with the scripted agent."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.doc_pages import section, shell_blocks
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def claimed_blocks() -> list[str]:
    (try_it,) = shell_blocks(section("README.md", "Try it"))
    (reading,) = shell_blocks(section("docs/http-api.md", "Reading a session"))
    return [try_it, reading]


def walkthrough_commands() -> list[str]:
    return [line for block in claimed_blocks() for line in block.splitlines()]


def run(command: str, port: int, max_time: float | None = None) -> str:
    command = command.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    if max_time is not None:  # the live stream never ends by itself: stop it like Ctrl-C would
        command = command.replace("curl -sN", f"curl -sN --max-time {max_time}", 1)
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 28), result.stderr  # 28: curl's --max-time
    return result.stdout


def frames(text: str) -> list[tuple[int, str]]:
    return [(int(i), t) for i, t in re.findall(r"^id: (\d+)\nevent: (\S+)$", text, flags=re.M)]


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    create, start, live, from_offset, from_last_id, messages, session = walkthrough_commands()
    server = ServerProcess(tmp_path, {}).start()
    try:
        assert json.loads(run(create, server.port))["id"] == "demo"
        started = json.loads(run(start, server.port))
        assert started["offset"] == 1 and started["run_id"].startswith("run_")

        streamed = frames(run(live, server.port, max_time=15))
        assert streamed[0] == (1, "session_created")
        assert [seq for seq, _ in streamed] == list(range(1, len(streamed) + 1))
        types = [t for _, t in streamed]
        assert types.count("tool_call_started") == 2
        assert {"tool_call_succeeded", "tool_call_failed"} <= set(types)
        assert types[-1] == "run_finished"
        head = streamed[-1][0]

        assert [seq for seq, _ in frames(run(from_offset, server.port))] == list(
            range(21, head + 1)
        )
        assert [seq for seq, _ in frames(run(from_last_id, server.port))] == list(
            range(26, head + 1)
        )

        body = json.loads(run(messages, server.port))
        user, assistant = body["messages"]
        assert user["parts"] == [
            {"type": "text", "text": "Add 2 and 3 and read /definitely/missing.txt"}
        ]
        states = [p["state"] for p in assistant["parts"] if "toolCallId" in p]
        assert sorted(states) == ["output-available", "output-error"]
        assert "5" in assistant["parts"][-1]["text"]

        shown = json.loads(run(session, server.port))
        assert shown["status"] == "idle" and shown["head"] == head and shown["runs"] == 1
    finally:
        server.stop()
