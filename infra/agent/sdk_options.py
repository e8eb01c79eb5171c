"""The `ClaudeAgentOptions` of one run: the CLI's environment, model, tools, MCP servers and
hooks. The one place that decides what the agent process gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions, HookMatcher

from infra.agent.config import AgentConfig
from infra.agent.reaping import RUN_MARKER
from infra.agent.run_home import RunHome

SCRIPTED_MODEL_NAME = "claude-sonnet-4-5"


def agent_options(
    config: AgentConfig,
    *,
    run_id: str,
    home: RunHome,
    hooks: dict[Any, list[HookMatcher]],
    mcp_servers: dict[str, Any],
    stderr: Callable[[str], None],
    base_url: str | None,
) -> ClaudeAgentOptions:
    """Options for the run's CLI; in scripted mode it talks to the model at `base_url`."""
    env = {
        "HOME": str(home.home),
        # No update checks, telemetry or error reports from the CLI.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        RUN_MARKER: run_id,
        **config.extra_env,
    }
    model = config.model
    if config.mode == "scripted":
        assert base_url is not None
        env["ANTHROPIC_BASE_URL"] = base_url
        env["ANTHROPIC_API_KEY"] = "sk-ant-scripted-model"
        model = model or SCRIPTED_MODEL_NAME
    return ClaudeAgentOptions(
        env=env,
        cwd=home.cwd,
        setting_sources=[],
        include_partial_messages=config.include_partial_messages,
        model=model,
        allowed_tools=list(config.agent_tools),
        # Off unless enabled: removed from the agent, so the model never sees them.
        disallowed_tools=sorted(config.disabled_tools),
        mcp_servers=mcp_servers,
        hooks=hooks,
        stderr=stderr,
        cli_path=config.cli_path,
        resume=home.resume,
        session_id=home.session_id,
    )
