"""In-process tools run only for calls the run let through.

An in-process MCP tool (`create_sdk_mcp_server`) runs in the server process, when the CLI's
stream carries a `control_request` `mcp_message` `tools/call`. A tool that can write to the
CLI's stdout can forge that frame, and the SDK would run the tool with no hook asked. So the
server decides again, in the tool server's own `tools/call` handler: the run's policy (the
operator's deny rules, the tools not enabled) must allow the tool, and this run's PreToolUse
hook must have let this very call (its `claudecode/toolUseId`) through (`ToolPermits`). A call
that fails either is refused (an error result, the tool never runs) and recorded.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import mcp.types

# The CLI's id for the tool_use block a tools/call answers, in the request's `_meta`.
TOOL_USE_ID = "claudecode/toolUseId"
# The in-process server's tools, as the CLI names them.
ToolCheck = Callable[[str, str | None, Any], str | None]


class ToolPermits:
    """The calls this run's PreToolUse hook let through, each usable once."""

    def __init__(self) -> None:
        self._granted: dict[str, str] = {}

    def grant(self, call_id: str, tool_name: str) -> None:
        self._granted[call_id] = tool_name

    def take(self, call_id: str | None, tool_name: str) -> bool:
        """True once for a call granted under that tool's name."""
        if call_id is None or self._granted.get(call_id) != tool_name:
            return False
        del self._granted[call_id]
        return True


def guarded_servers(servers: Mapping[str, Any], refusal: ToolCheck) -> dict[str, Any]:
    """`servers` with each in-process one answering `tools/call` only when `refusal(tool name
    as the CLI knows it, call id, arguments)` is None; otherwise an error result saying why.
    The servers are copied: a team may hand the same server object to every run."""
    guarded: dict[str, Any] = {}
    for name, config in servers.items():
        instance = config.get("instance") if isinstance(config, dict) else None
        if config.get("type") != "sdk" or instance is None:
            guarded[name] = config
            continue
        guarded[name] = {**config, "instance": _guarded(name, instance, refusal)}
    return guarded


def _guarded(server_name: str, server: Any, refusal: ToolCheck) -> Any:
    entry = server.get_request_handler("tools/call")
    copied = copy.copy(server)
    # The copy's own table, so guarding it leaves the team's server as it was.
    copied._request_handlers = dict(server._request_handlers)
    if entry is None:
        return copied

    async def call_tool(context: Any, params: mcp.types.CallToolRequestParams) -> Any:
        meta = params.meta or {}
        call_id = meta.get(TOOL_USE_ID) if isinstance(meta, Mapping) else None
        tool = f"mcp__{server_name}__{params.name}"
        why = refusal(tool, call_id if isinstance(call_id, str) else None, params.arguments)
        if why is not None:
            return mcp.types.CallToolResult(
                content=[mcp.types.TextContent(type="text", text=why)], is_error=True
            )
        return await entry.handler(context, params)

    copied.add_request_handler("tools/call", entry.params_type, call_tool)
    return copied
