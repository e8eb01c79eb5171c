"""The `ClaudeAgentOptions` of one run: the CLI's environment, model, tools, MCP servers,
hooks and the session store its transcript is mirrored into and resumed from. The one place
that decides what the agent process gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions, HookMatcher
from claude_agent_sdk.types import SessionStore

from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.recovery.leftovers import RUN_MARKER
from agentlog.infra.agent.run.home import RunHome

SCRIPTED_MODEL_NAME = "claude-sonnet-4-5"


def agent_options(
    config: AgentConfig,
    *,
    run_id: str,
    home: RunHome,
    agent_session: str,
    resume: bool,
    session_store: SessionStore,
    hooks: dict[Any, list[HookMatcher]],
    mcp_servers: dict[str, Any],
    stderr: Callable[[str], None],
    base_url: str | None,
    team: ClaudeAgentOptions | None = None,
    can_use_tool: Any = None,
) -> ClaudeAgentOptions:
    """Options for the run's CLI; in scripted mode it talks to the model at `base_url`.

    `team`: a team agent's own options (checked by `team_options.check`), into which agentlog
    merges what it owns (see team_options.FIELDS): `hooks` (already composed with the team's,
    hooks.py), `can_use_tool` (the team's, wrapped to record its denials), the env, the tools
    the operator gates; everything else is the team's. None: agentlog's demo agent.

    The CLI resumes `agent_session` when the store holds its transcript (`resume`; the SDK
    writes it into a temporary config directory of its own and points CLAUDE_CONFIG_DIR
    there), else starts it under that id; either way every line it writes is mirrored into
    `session_store` as it goes (`eager`: a crash mid-turn keeps what was written)."""
    env = {
        "HOME": str(home.home),
        # Also where the SDK looks for the lines it mirrors (see RunHome.config_dir), and where
        # it copies auth files from on a resume: the run's own, never the server operator's.
        "CLAUDE_CONFIG_DIR": str(home.config_dir),
        # No update checks, telemetry or error reports from the CLI.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        RUN_MARKER: run_id,
        **config.extra_env,
    }
    model = (team.model if team is not None else None) or config.model
    if config.mode == "scripted":
        assert base_url is not None
        env["ANTHROPIC_BASE_URL"] = base_url
        env["ANTHROPIC_API_KEY"] = "sk-ant-scripted-model"
        model = model or SCRIPTED_MODEL_NAME
    if team is not None:
        return replace(
            team,
            # The team's names never shadow agentlog's (team_options.check refuses them).
            env={**team.env, **env},
            cwd=home.cwd,
            setting_sources=team.setting_sources if team.setting_sources is not None else [],
            include_partial_messages=config.include_partial_messages,
            model=model,
            allowed_tools=list(team.allowed_tools),
            # What the operator has not enabled is taken away, whatever the team lists.
            disallowed_tools=sorted({*team.disallowed_tools, *config.disabled_tools}),
            hooks=hooks,
            can_use_tool=can_use_tool,
            stderr=stderr,
            cli_path=config.cli_path,
            resume=agent_session if resume else None,
            session_id=None if resume else agent_session,
            session_store=session_store,
            session_store_flush="eager",
        )
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
        resume=agent_session if resume else None,
        session_id=None if resume else agent_session,
        session_store=session_store,
        session_store_flush="eager",
    )
