"""A stable hash of what a team's options say, so the log shows which version of an agent ran.

Only the serialisable parts count (what the agent is told and may do): the system prompt,
the models, the tool lists, each MCP server's name and kind with its command or URL, the
subagents, the limits, the settings sources, the env's names (values may differ per host), the
qualified names of hook and permission functions, and the workspace template's contents.
Functions and server objects hash by name, so the same code gives the same fingerprint in
every process, while a changed prompt, tool list or template gives a new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions

_COPIED = (
    "system_prompt",
    "model",
    "fallback_model",
    "tools",
    "allowed_tools",
    "disallowed_tools",
    "permission_mode",
    "max_turns",
    "max_budget_usd",
    "thinking",
    "effort",
    "max_thinking_tokens",
    "setting_sources",
    "skills",
    "output_format",
    "betas",
)


def agent_fingerprint(options: ClaudeAgentOptions, template_digest: str | None = None) -> str:
    """`sha256:` and 16 hex digits over the options' serialisable parts (module docstring)."""
    described: dict[str, Any] = {name: getattr(options, name) for name in _COPIED}
    servers = options.mcp_servers if isinstance(options.mcp_servers, Mapping) else {}
    described["mcp_servers"] = {name: _server(config) for name, config in servers.items()}
    described["agents"] = {
        name: dataclasses.asdict(agent) if dataclasses.is_dataclass(agent) else agent
        for name, agent in (options.agents or {}).items()
    }
    described["env"] = sorted(options.env)
    described["hooks"] = {
        str(event): [[m.matcher, [_function_name(h) for h in m.hooks]] for m in matchers]
        for event, matchers in (options.hooks or {}).items()
    }
    described["can_use_tool"] = (
        _function_name(options.can_use_tool) if options.can_use_tool else None
    )
    described["workspace_template"] = template_digest
    text = json.dumps(described, sort_keys=True, default=_plain, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _server(config: Any) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        return {"type": type(config).__name__}
    kind = config.get("type", "stdio")
    if kind == "sdk":
        # The server object is the team's code: its name stands for it.
        return {"type": "sdk", "name": config.get("name")}
    return {key: config[key] for key in ("type", "command", "args", "url") if key in config} | {
        "type": kind
    }


def _function_name(function: Any) -> str:
    module = getattr(function, "__module__", "") or ""
    return f"{module}.{getattr(function, '__qualname__', type(function).__name__)}"


def _plain(value: Any) -> Any:
    """What json cannot encode itself: dataclasses, paths, sets, anything else by its repr."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(map(str, value))
    return str(value)
