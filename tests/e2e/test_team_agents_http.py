"""A team's agents served by `agentlog serve` as a user runs it: two named agents serving two
sessions of one server, over HTTP, on SQLite and PostgreSQL; and every bad agent setting
stopping the start with one line and exit 2, before anything is served."""

from __future__ import annotations

import asyncio
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT
from tests.support.server import AGENTLOG, ServerProcess

pytestmark = pytest.mark.slow

AGENTS = "support=examples.support_agent.agent:agent,billing=examples.support_agent.agent:billing"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    )


RUN_ENDS = {"run_finished", "run_failed", "run_cancelled", "run_abandoned"}


async def finished_texts(http: aiohttp.ClientSession, session: str, prompt: str) -> list[str]:
    """Start a run and wait for its terminal event in the log; the texts the agent wrote in it.
    (Not the session's status: that is a projection, which may not have seen the run yet.)"""
    async with http.post(f"/v1/sessions/{session}/runs", json={"prompt": prompt}) as response:
        assert response.status in (200, 201, 202), await response.text()
        offset = (await response.json())["offset"]
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while not any(e["type"] in RUN_ENDS for e in events):
            await asyncio.sleep(0.1)
            params = {"offset": offset, "limit": 5000}
            async with http.get(f"/v1/sessions/{session}/events", params=params) as response:
                events = (await response.json())["events"]
    (end,) = [e for e in events if e["type"] in RUN_ENDS]
    assert end["type"] == "run_finished", end
    texts = [e["text"] for e in events if e["type"] == "text_completed"]
    assert texts, [
        (e["type"], e.get("text") or e.get("message") or e.get("stop_reason")) for e in events
    ]
    return texts


async def test_two_named_agents_serve_two_sessions_of_one_server(
    tmp_path: Path, database_url: str
) -> None:
    server = ServerProcess(
        tmp_path,
        {
            "AGENTLOG_DATABASE_URL": database_url,
            "AGENTLOG_AGENTS": AGENTS,
            "AGENTLOG_AGENT": "examples.support_agent.agent:agent",  # the default: "support"
            "AGENTLOG_WORKSPACE_DIR": str(tmp_path / "workspaces"),
            "PYTHONPATH": str(ROOT),
        },
    ).start()
    try:
        async with aiohttp.ClientSession(server.url) as http:
            body = {"id": "s-support", "metadata": {"customer": "Ada"}}
            async with http.post("/v1/sessions", json=body) as response:
                assert response.status == 201
                assert (await response.json())["agent"] == "support"  # the default
            async with http.post("/v1/sessions", json={"id": "s-billing", "agent": "billing"}) as r:
                assert r.status == 201
            # An agent the server does not host: 422, and no session was created.
            async with http.post("/v1/sessions", json={"id": "s-x", "agent": "sales"}) as r:
                assert r.status == 422
                error = await r.json()
                assert error["error"]["code"] == "unknown_agent", error
            async with http.get("/v1/sessions/s-x") as response:
                assert response.status == 404

            support, billing = await asyncio.gather(
                finished_texts(http, "s-support", "[scenario:system-prompt]"),
                finished_texts(http, "s-billing", "[scenario:system-prompt]"),
            )
            assert "You are Acme's support agent. Customer: Ada." in support[0]
            assert "You are Acme's billing agent." in billing[0]
            assert "support agent" not in billing[0]

            async with http.get("/v1/sessions/s-billing/events") as response:
                events = (await response.json())["events"]
            [created] = [e for e in events if e["type"] == "session_created"]
            [started] = [e for e in events if e["type"] == "run_started"]
            assert created["agent"] == started["agent_name"] == "billing"
            assert started["agent_fingerprint"].startswith("sha256:")
            async with http.get("/v1/sessions") as response:
                listed = {s["id"]: s["agent"] for s in (await response.json())["sessions"]}
            assert listed == {"s-support": "support", "s-billing": "billing"}
    finally:
        server.stop()


TEAM_MODULE = """
    from claude_agent_sdk import ClaudeAgentOptions

    NUMBER = 7

    def agent(context):
        return ClaudeAgentOptions(system_prompt="ok")

    def returns_dict(context):
        return {"system_prompt": "ok"}

    def two_args(context, extra):
        return ClaudeAgentOptions()

    async def needs_metadata(context):
        return ClaudeAgentOptions(system_prompt=context.metadata["customer"])

    sets_cwd = ClaudeAgentOptions(cwd="/srv/acme")
    secret_env = ClaudeAgentOptions(env={"ACME_TOKEN": "t"})
    bypasses = ClaudeAgentOptions(permission_mode="bypassPermissions")
    runs_bash = ClaudeAgentOptions(allowed_tools=["Bash"])
"""


@pytest.mark.parametrize(
    ("env", "flag", "line"),
    [
        (
            {"AGENTLOG_AGENT": "acme_nowhere:agent"},
            None,
            "AGENTLOG_AGENT=acme_nowhere:agent: cannot import acme_nowhere: "
            "ModuleNotFoundError: No module named 'acme_nowhere'",
        ),
        (
            {"AGENTLOG_AGENT": "team_broken:agent"},
            None,
            "AGENTLOG_AGENT=team_broken:agent: cannot import team_broken: "
            "RuntimeError: the config file is missing",
        ),
        (
            {},
            "team_ok:missing",
            "AGENTLOG_AGENT=team_ok:missing: module team_ok has no attribute missing",
        ),
        (
            {"AGENTLOG_AGENTS": "a=team_ok:agent,n=team_ok:NUMBER"},
            None,
            "AGENTLOG_AGENTS: n=team_ok:NUMBER: NUMBER is a int, not a ClaudeAgentOptions or "
            "a function returning one",
        ),
        (
            {"AGENTLOG_AGENTS": "d=team_ok:returns_dict"},
            None,
            "AGENTLOG_AGENTS: d=team_ok:returns_dict: returned dict, not ClaudeAgentOptions",
        ),
        (
            {"AGENTLOG_AGENT": "team_ok:two_args"},
            None,
            "AGENTLOG_AGENT=team_ok:two_args: two_args must take one argument "
            "(the run's AgentContext)",
        ),
        (
            {"AGENTLOG_AGENT": "team_ok:needs_metadata"},
            None,
            "AGENTLOG_AGENT=team_ok:needs_metadata: needs_metadata(context) raised KeyError: "
            "'customer'",
        ),
        (
            {"AGENTLOG_AGENT": "team_ok:sets_cwd"},
            None,
            "AGENTLOG_AGENT=team_ok:sets_cwd: cwd: agentlog owns it (the session's workspace); "
            "leave it unset",
        ),
        (
            {"AGENTLOG_AGENT": "team_ok:secret_env"},
            None,
            "AGENTLOG_AGENT=team_ok:secret_env: env: ACME_TOKEN looks like a secret",
        ),
        (
            {"AGENTLOG_AGENT": "team_ok:bypasses"},
            None,
            "AGENTLOG_AGENT=team_ok:bypasses: permission_mode='bypassPermissions': agentlog "
            "refuses it",
        ),
        (
            {"AGENTLOG_AGENT": "team_ok:runs_bash"},
            None,
            "AGENTLOG_AGENT=team_ok:runs_bash: allowed_tools: Bash runs commands",
        ),
        (
            {"AGENTLOG_AGENTS": "support"},
            None,
            "AGENTLOG_AGENTS: 'support' is not name=module:attribute",
        ),
    ],
)
def test_a_bad_agent_setting_stops_the_start_with_one_line(
    tmp_path: Path, env: dict[str, str], flag: str | None, line: str
) -> None:
    (tmp_path / "team_ok.py").write_text(textwrap.dedent(TEAM_MODULE))
    (tmp_path / "team_broken.py").write_text('raise RuntimeError("the config file is missing")\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTLOG_", "ANTHROPIC"))}
    args = [str(AGENTLOG), "serve", "--port", "0"] + (["--agent", flag] if flag else [])
    done = subprocess.run(
        args,
        cwd=tmp_path,  # a module beside where the server starts is importable
        env={**environ, **env, "AGENTLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"agentlog: configuration error: {line}"), done.stderr
    assert not (tmp_path / "db").exists()  # nothing was opened, let alone served
