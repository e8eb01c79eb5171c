"""A run reaches exactly the hosts its agent names (AGENTLOG_AGENT_EGRESS), through the egress
proxy in the server: a Bash tool in the real CLI, in its sandbox, asks two loopback HTTP
servers on the host, one named and one not, with curl (plain and through CONNECT) and with
Python's urllib."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from claude_agent_sdk import ClaudeAgentOptions

from agentlog.domain.events import EgressRefused, ToolCallSucceeded
from agentlog.infra.agent.agents.catalog import AgentCatalog, HostedAgent
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.policy import ApprovalPolicy
from agentlog.infra.agent.run.runner import open_agent_runner
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from tests.agent.test_runner import new_session, only, run_turn
from tests.agent.test_sandbox import bash_output, need_sandbox

pytestmark = pytest.mark.slow


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


class Site:
    """A loopback HTTP server that answers `text` and counts what it was asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests = 0
        self.port = 0

    async def answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(text=self.text)


@pytest.fixture
async def sites() -> AsyncIterator[tuple[Site, Site]]:
    runners = []
    pair = (Site("the allowed site says hello 5b1c"), Site("the other site says hello 9e07"))
    for site in pair:
        app = web.Application()
        app.router.add_get("/", site.answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        site.port = runner.addresses[0][1]
        runners.append(runner)
    yield pair
    for runner in runners:
        await runner.cleanup()


def asking(allowed: Site, other: Site) -> str:
    """Both sites, each three ways; `localhost`, as 127.0.0.1 is the sandbox's own loopback."""
    fetch = (
        'python3 -c "import sys, urllib.request as u; '
        'print(u.urlopen(sys.argv[1], timeout=10).read().decode())" {url} 2>&1 | tail -1'
    )
    lines = []
    for name, site in (("allowed", allowed), ("other", other)):
        url = f"http://localhost:{site.port}/"
        lines += [
            f"echo '== {name} curl'; curl -s --max-time 10 {url}",
            f"echo '== {name} connect'; curl -s --max-time 10 -p {url} || echo 'no tunnel'",
            f"echo '== {name} python'; " + fetch.format(url=url),
        ]
    return "; ".join(lines)


async def test_a_tool_reaches_the_named_host_and_no_other(
    store: StoreBase, tmp_path: Path, sites: tuple[Site, Site]
) -> None:
    need_sandbox()
    allowed, other = sites
    session = await new_session(store)
    async with (
        ScriptedModel(shell_command=asking(allowed, other)) as model,
        open_agent_runner(
            store,
            base_url=model.base_url,
            workspace_root=tmp_path / "workspaces",
            run_home_root=tmp_path / "homes",
            enabled_tools=frozenset({"Bash"}),
            approval=ApprovalPolicy(),
            egress=(f"localhost:{allowed.port}",),
        ) as runner,
    ):
        events = await run_turn(runner, store, session, "Run the demo in the shell.")
    output = await bash_output(store, events)
    assert output.count(allowed.text) == 3, output
    assert other.text not in output
    assert other.requests == 0 and allowed.requests == 3
    refused = only(events, EgressRefused)
    assert len(refused) == 3
    assert {(e.host, e.port) for e in refused} == {("localhost", other.port)}


async def test_without_named_hosts_a_tool_reaches_no_host(
    store: StoreBase, tmp_path: Path, sites: tuple[Site, Site]
) -> None:
    need_sandbox()
    allowed, other = sites
    session = await new_session(store)
    async with (
        ScriptedModel(shell_command=asking(allowed, other)) as model,
        open_agent_runner(
            store,
            base_url=model.base_url,
            workspace_root=tmp_path / "workspaces",
            run_home_root=tmp_path / "homes",
            enabled_tools=frozenset({"Bash"}),
            approval=ApprovalPolicy(),
        ) as runner,
    ):
        events = await run_turn(runner, store, session, "Run the demo in the shell.")
    output = await bash_output(store, events)
    assert "== other python" in output
    assert allowed.text not in output and other.text not in output
    assert allowed.requests == other.requests == 0


def test_the_named_hosts_come_from_agentlog_agent_egress() -> None:
    config = AgentConfig.from_env({"AGENTLOG_AGENT_EGRESS": "api.github.com, Example.org:8443"})
    assert config.egress == ("api.github.com", "example.org:8443")
    with pytest.raises(ValueError, match="AGENTLOG_AGENT_EGRESS"):
        AgentConfig.from_env({"AGENTLOG_AGENT_EGRESS": "https://example.org/path"})


# A stdio MCP server, inline (`python -c`), whose one tool fetches a URL with urllib.
FETCH_SERVER = """
import json, sys, urllib.request
TOOL = {"name": "fetch", "description": "Fetch a URL", "inputSchema": {"type": "object",
        "properties": {"url": {"type": "string"}}, "required": ["url"]}}
for line in sys.stdin:
    if not line.strip():
        continue
    request = json.loads(line)
    if "id" not in request:
        continue
    method, params = request.get("method"), request.get("params") or {}
    if method == "initialize":
        result = {"protocolVersion": params.get("protocolVersion", "2024-11-05"),
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "web", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call":
        try:
            text = urllib.request.urlopen(params["arguments"]["url"], timeout=10).read().decode()
        except Exception as exc:
            text = f"fetch failed: {exc}"
        result = {"content": [{"type": "text", "text": text}]}
    else:
        result = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}) + "\\n")
    sys.stdout.flush()
"""


async def test_a_stdio_mcp_server_reaches_the_named_host_and_no_other(
    store: StoreBase, tmp_path: Path, sites: tuple[Site, Site]
) -> None:
    need_sandbox()
    allowed, other = sites
    web_server = {"type": "stdio", "command": sys.executable, "args": ["-c", FETCH_SERVER]}
    team = ClaudeAgentOptions(
        mcp_servers={"web": web_server},  # type: ignore[dict-item]
        allowed_tools=["mcp__web__fetch"],
    )
    agents = AgentCatalog({"team": HostedAgent("team", source=team)}, default="team")
    outputs = []
    async with (
        ScriptedModel() as model,
        open_agent_runner(
            store,
            base_url=model.base_url,
            workspace_root=tmp_path / "workspaces",
            run_home_root=tmp_path / "homes",
            agents=agents,
            egress=(f"localhost:{allowed.port}",),
        ) as runner,
    ):
        session = await new_session(store)
        for site in (allowed, other):
            url = f"http://localhost:{site.port}/"
            prompt = "[call:mcp__web__fetch " + json.dumps({"url": url}) + "]"
            events = await run_turn(runner, store, session, prompt)
            outputs += [str(e.output) for e in only(events, ToolCallSucceeded)]
    assert outputs[0] == allowed.text
    assert "403" in outputs[1] and other.text not in outputs[1]
    assert (allowed.requests, other.requests) == (1, 0)
    (refused,) = only(await store.read_session(session), EgressRefused)
    assert refused.port == other.port
