"""The guard on in-process tools, however the `mcp_message` reaches the SDK: the SDK's own
bridge (what its control-protocol handler calls for every `mcp_message` frame) routes a
`tools/call` to the guarded demo server. This holds when a forged frame can no longer be
written into the CLI's stdout (test_untrusted_stream.py forges it there today)."""

from __future__ import annotations

from typing import Any

from claude_agent_sdk._internal.sdk_mcp_bridge import SdkMcpBridge

from agentlog.infra.agent.run.jobs import InProcessJobService, PollPolicy, demo_mcp_server
from agentlog.infra.agent.run.tool_permits import ToolPermits, guarded_servers

HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "claude-code", "version": "2"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def call(tool: str, arguments: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    meta = {} if call_id is None else {"_meta": {"claudecode/toolUseId": call_id}}
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, **meta},
    }


async def test_only_a_permitted_call_runs_and_each_refusal_says_why() -> None:
    permits = ToolPermits()
    asked: list[tuple[str, str | None, Any]] = []

    def refusal(tool: str, call_id: str | None, arguments: Any) -> str | None:
        asked.append((tool, call_id, arguments))
        return None if permits.take(call_id, tool) else f"{tool} was not let through"

    jobs = InProcessJobService()
    demo = demo_mcp_server(jobs, PollPolicy(interval_seconds=0.05))
    original = demo["instance"]  # type: ignore[typeddict-item]
    guarded = guarded_servers({"demo": demo}, refusal)["demo"]["instance"]
    bridge = SdkMcpBridge("demo", guarded)
    try:
        for message in HANDSHAKE:
            await bridge.handle(message)
        forged = await bridge.handle(call("publish", {"text": "forged"}, None))
        permits.grant("toolu_1", "mcp__demo__publish")
        wrong_id = await bridge.handle(call("publish", {"text": "forged"}, "toolu_2"))
        allowed = await bridge.handle(call("publish", {"text": "hello"}, "toolu_1"))
    finally:
        await bridge.aclose()
        await jobs.close()
    assert forged is not None and wrong_id is not None and allowed is not None
    assert forged["result"]["isError"] is True
    assert "not let through" in forged["result"]["content"][0]["text"]
    assert wrong_id["result"]["isError"] is True
    assert allowed["result"]["content"][0]["text"] == "published: hello"
    assert asked[0] == ("mcp__demo__publish", None, {"text": "forged"})
    # The server the agent handed over is left as it was: another run's guard is its own.
    assert original.get_request_handler("tools/call") is not guarded.get_request_handler(
        "tools/call"
    )
