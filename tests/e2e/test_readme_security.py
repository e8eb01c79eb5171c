"""docs/security.md's session-token commands, run as written (only the port differs) against a real
`agentlog serve` with AGENTLOG_API_TOKEN set: a read token from `agentlog token` streams the
session with `?access_token=`, and the session's token route mints a write token."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.doc_pages import section, shell_blocks
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

TOKEN = "readme-security-api-token"


def claimed_blocks() -> list[str]:
    (block,) = shell_blocks(section("docs/security.md", "Session tokens for a browser front end"))
    return [block]


def test_the_security_commands_run_as_written(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, {"AGENTLOG_API_TOKEN": TOKEN}).start()
    try:
        request = urllib.request.Request(
            f"{server.url}/v1/sessions",
            data=b'{"id": "demo"}',
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        (block,) = claimed_blocks()
        script = block.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")
        done = subprocess.run(
            ["bash", "-ec", script],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,  # the commands use .venv/bin/agentlog
            env={**os.environ, "AGENTLOG_API_TOKEN": TOKEN},
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    stream, _, minted = done.stdout.rpartition("\n")
    assert "event: session_created" in stream and "id: 1" in stream
    answer = json.loads(minted)
    assert (answer["session_id"], answer["scope"]) == ("demo", "write")
    assert answer["token"].startswith("agl1.")
