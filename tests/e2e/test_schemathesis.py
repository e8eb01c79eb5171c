"""schemathesis (`--checks all`) against a real `agentlog serve` and the OpenAPI document it
serves: no 5xx, no response outside the document, no valid request refused and no invalid one
accepted. The number of examples is bounded so the suite stays fast; the seed is fixed so a
failure reproduces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).parents[1] / "schemathesis" / "schemathesis.toml"
MAX_EXAMPLES = "5"


def schemathesis(server: ServerProcess, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(ST),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/v1/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "14",
            "--workers",
            "1",
            "--no-color",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=server.cwd,
    )


@pytest.mark.parametrize("token", [None, "st-api-token"], ids=["open", "with-token"])
def test_schemathesis_finds_nothing(tmp_path: Path, sqlite_url: str, token: str | None) -> None:
    env = {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_MAX_ACTIVE_RUNS": "2"}
    extra: list[str] = []
    if token is not None:
        env["AGENTLOG_API_TOKEN"] = token
        extra = ["--header", f"Authorization: Bearer {token}"]
    server = ServerProcess(tmp_path, env).start()
    try:
        done = schemathesis(server, *extra)
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested:" in done.stdout  # it really ran
