"""docs/use-chat.md's "Attachments" example, run as written (only the port differs) against a
real `agentlog serve` on the embedded default with the scripted agent, from the server's
directory: a text file sent with a prompt comes back as a `file` part and from its URL."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.doc_pages import section, shell_blocks
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def claimed_blocks() -> list[str]:
    sending, reading = shell_blocks(section("docs/use-chat.md", "Attachments"))
    return [sending, reading]


def run(script: str, server: ServerProcess) -> str:
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")
    done = subprocess.run(
        ["bash", "-ec", script], capture_output=True, text=True, timeout=60, cwd=server.cwd
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def idle(server: ServerProcess) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        shown = json.loads(run("curl -s http://127.0.0.1:8080/v1/sessions/files-demo", server))
        if shown["runs"] == 1 and shown["status"] == "idle":
            return dict(shown)
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)


def test_the_attachments_example_runs_as_written(tmp_path: Path) -> None:
    sending, reading = claimed_blocks()
    server = ServerProcess(tmp_path, {}).start()
    try:
        # One script: curl's two JSON answers, with no newline between them.
        output = run(sending, server)
        created, end = json.JSONDecoder().raw_decode(output)
        started = json.loads(output[end:])
        assert created["id"] == "files-demo"
        assert started["run_id"].startswith("run_")
        idle(server)

        messages_line, file_line = reading.splitlines()
        user, answer = json.loads(run(messages_line, server))["messages"]
        sha = hashlib.sha256(b"Ship on Friday.\n").hexdigest()
        assert user["parts"] == [
            {
                "type": "file",
                "mediaType": "text/plain",
                "url": f"/v1/sessions/files-demo/files/{sha}",
                "filename": "notes.txt",
            },
            {"type": "text", "text": "What do my notes say?"},
        ]
        said = "".join(p["text"] for p in answer["parts"] if p["type"] == "text")
        assert said.startswith("I was shown 1 file(s): document text/plain 16 bytes")
        assert run(file_line, server) == "Ship on Friday.\n"
    finally:
        server.stop()
