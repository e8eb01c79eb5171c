"""A team's HTTP MCP server, outside the sandbox, reached by the real CLI through the egress
proxy when the agent's host list names it (AGENTLOG_AGENT_EGRESS), and not otherwise.

The server here is a small JSON-RPC endpoint speaking MCP's streamable HTTP transport (one
JSON answer per POST), on a loopback port of the host; inside the sandbox `127.0.0.1` is the
sandbox's own loopback, so the agent names it as `localhost`, as a tool would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from claude_agent_sdk import ClaudeAgentOptions

from agentlog.domain.events import ToolCallStarted, ToolCallSucceeded
from agentlog.infra.agent.agents.catalog import AgentCatalog, HostedAgent
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.store.base import StoreBase
from tests.agent.test_sandbox import need_sandbox

from .test_runner import new_session, only, run_turn, runner_on

pytestmark = pytest.mark.slow

ECHO_TOOL = {
    "name": "echo",
    "description": "Echo a text back",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


class McpOverHttp:
    """An MCP server with one tool, `echo`, counting the calls it answered."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        message = await request.json()
        method, ident = message.get("method"), message.get("id")
        if ident is None:  # a notification (notifications/initialized): nothing to answer
            return web.Response(status=202)
        result: dict[str, Any]
        if method == "initialize":
            result = {
                "protocolVersion": message["params"].get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "web", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": [ECHO_TOOL]}
        elif method == "tools/call":
            self.calls.append(message["params"])
            text = message["params"]["arguments"]["text"]
            result = {"content": [{"type": "text", "text": f"echo from the web server: {text}"}]}
        else:
            return web.json_response(
                {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": method}}
            )
        return web.json_response({"jsonrpc": "2.0", "id": ident, "result": result})


@pytest.fixture
async def mcp_server() -> AsyncIterator[McpOverHttp]:
    server = McpOverHttp()
    app = web.Application()
    app.router.add_post("/mcp", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


def web_agent(port: int) -> AgentCatalog:
    team = ClaudeAgentOptions(
        mcp_servers={"web": {"type": "http", "url": f"http://localhost:{port}/mcp"}},
        allowed_tools=["mcp__web__echo"],
    )
    return AgentCatalog({"team": HostedAgent("team", source=team)}, default="team")


CALL = '[call:mcp__web__echo {"text": "hello 31f"}]'


async def test_an_http_mcp_server_on_a_named_host_is_called_and_recorded(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, mcp_server: McpOverHttp
) -> None:
    need_sandbox()
    async with runner_on(
        sqlite_store,
        scripted_model,
        tmp_path,
        agents=web_agent(mcp_server.port),
        egress=(f"localhost:{mcp_server.port}",),
    ) as runner:
        session = await new_session(sqlite_store)
        events = await run_turn(runner, sqlite_store, session, CALL)
    [started] = only(events, ToolCallStarted)
    assert (started.tool_name, started.input) == ("mcp__web__echo", {"text": "hello 31f"})
    [succeeded] = only(events, ToolCallSucceeded)
    assert "echo from the web server: hello 31f" in json.dumps(succeeded.output)
    assert [call["arguments"] for call in mcp_server.calls] == [{"text": "hello 31f"}]


async def test_without_the_host_named_the_cli_never_reaches_the_http_mcp_server(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, mcp_server: McpOverHttp
) -> None:
    need_sandbox()
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, agents=web_agent(mcp_server.port)
    ) as runner:
        session = await new_session(sqlite_store)
        events = await run_turn(runner, sqlite_store, session, CALL)
    assert only(events, ToolCallSucceeded) == []
    assert mcp_server.calls == []
