"""A team's `ClaudeAgentOptions`: what agentlog does with each field, and the checks it makes.

Every field of `ClaudeAgentOptions` is in `FIELDS`, with one of four treatments:

- `passed`: given to the CLI as the team wrote it;
- `merged`: the team's value and agentlog's are combined (hooks, env, tools, permissions);
- `owned`: agentlog sets it for every run (the workspace, the transcript, the launcher): a
  team that sets it is refused, never silently overridden;
- `refused`: agentlog cannot honour it safely yet (it would reach around the sandbox or the
  approval gate); a team that sets it is refused.

A field the SDK adds after this table was written is refused when set, until it is classified:
agentlog does not guess what a new option does. docs/your-agent.md shows the same table.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from claude_agent_sdk import ClaudeAgentOptions

PASSED = "passed"
MERGED = "merged"
OWNED = "owned"
REFUSED = "refused"

# field -> (treatment, what agentlog does with it)
FIELDS: dict[str, tuple[str, str]] = {
    "tools": (PASSED, "the base tool set"),
    "allowed_tools": (
        MERGED,
        "passed; a tool the operator has not enabled (AGENTLOG_ENABLE_TOOLS) is refused",
    ),
    "system_prompt": (PASSED, "a string or preset; a file must be inside the agent's folder"),
    "mcp_servers": (
        PASSED,
        "in-process (sdk) servers run in the server process; stdio servers are started by the "
        "CLI inside the sandbox; a config file path is refused",
    ),
    "strict_mcp_config": (PASSED, ""),
    "permission_mode": (PASSED, "except bypassPermissions, which is refused"),
    "continue_conversation": (OWNED, "agentlog resumes the session's own conversation"),
    "resume": (OWNED, "agentlog resumes the session's CLI session from its store"),
    "session_id": (OWNED, "agentlog names the CLI session (one per branch)"),
    "max_turns": (PASSED, ""),
    "max_budget_usd": (PASSED, ""),
    "disallowed_tools": (MERGED, "the team's, plus every tool the operator has not enabled"),
    "model": (PASSED, "default AGENTLOG_AGENT_MODEL; offline, the scripted model answers"),
    "fallback_model": (PASSED, ""),
    "betas": (PASSED, ""),
    "permission_prompt_tool_name": (
        REFUSED,
        "permissions are decided by can_use_tool, hooks and agentlog's approval gate",
    ),
    "cwd": (OWNED, "the session's workspace"),
    "cli_path": (OWNED, "the sandbox launcher"),
    "settings": (
        REFUSED,
        "a settings file can change permissions, hooks and env behind agentlog's checks",
    ),
    "add_dirs": (REFUSED, "only the session's workspace is writable in the sandbox"),
    "env": (
        MERGED,
        "the team's variables are added; a secret-looking name or one agentlog sets is refused",
    ),
    "extra_args": (REFUSED, "raw CLI flags could override what agentlog owns"),
    "max_buffer_size": (PASSED, ""),
    "debug_stderr": (OWNED, "agentlog keeps the CLI's stderr for the run's error"),
    "stderr": (OWNED, "agentlog keeps the CLI's stderr for the run's error"),
    "can_use_tool": (MERGED, "asked first; its denial is recorded as tool_call_denied"),
    "hooks": (
        MERGED,
        "agentlog's recording hooks and policy run first; the team's run after, in order; "
        "a team hook's deny is recorded",
    ),
    "user": (REFUSED, "the sandbox decides the user the CLI runs as"),
    "include_partial_messages": (OWNED, "on: agentlog streams text as it is written"),
    "include_hook_events": (OWNED, "agentlog records hooks itself"),
    "forward_subagent_text": (PASSED, ""),
    "verbatim_prompts": (PASSED, ""),
    "fork_session": (OWNED, "agentlog forks sessions itself (POST /v1/sessions/{id}/fork)"),
    "resume_session_at": (OWNED, "agentlog rewinds on its own branches"),
    "resume_drops_turn": (OWNED, "agentlog rewinds on its own branches"),
    "agents": (PASSED, "subagents"),
    "setting_sources": (
        PASSED,
        "default none; 'project' reads CLAUDE.md, skills and commands from the workspace, "
        "which the agent's workspace template fills",
    ),
    "skills": (PASSED, ""),
    "sandbox": (PASSED, "the CLI's own sandbox, inside agentlog's"),
    "plugins": (REFUSED, "not yet: put skills and commands in the workspace template"),
    "max_thinking_tokens": (PASSED, ""),
    "thinking": (PASSED, ""),
    "effort": (PASSED, ""),
    "output_format": (PASSED, ""),
    "enable_file_checkpointing": (PASSED, ""),
    "session_store": (OWNED, "the session's transcript lives in agentlog's database"),
    "session_store_flush": (OWNED, "eager: a crash mid-turn keeps what was written"),
    "load_timeout_ms": (PASSED, ""),
    "task_budget": (PASSED, ""),
    "client_app": (PASSED, ""),
}

# Variables agentlog sets for the CLI itself, and the sandbox's fixed environment.
AGENTLOG_VARIABLES = re.compile(
    r"\A(HOME|USER|PATH|LANG|TMPDIR|TERM|ANTHROPIC_.*|CLAUDE_.*|AGENTLOG_.*)\Z"
)
# Names that look like they hold a secret: a secret in `env` would be readable by every tool
# the agent runs; secrets stay in the server process (in-process tools, the model gateway).
SECRET_LOOKING = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION", re.IGNORECASE
)


class TeamOptionsRefused(ValueError):
    """A team's options set something agentlog must own or cannot honour; names the field."""


def refusals(options: ClaudeAgentOptions, disabled_tools: Iterable[str] = ()) -> list[str]:
    """Why agentlog cannot host these options as they are, one line per field (empty: fine).
    `disabled_tools`: the tools the operator has not enabled (AgentConfig.disabled_tools)."""
    problems: list[str] = []
    defaults = type(options)()
    for field in dataclasses.fields(options):
        name = field.name
        value = getattr(options, name)
        if value == getattr(defaults, name):
            continue
        treatment, why = FIELDS.get(name, (REFUSED, "agentlog does not know this option yet"))
        if name == "include_partial_messages" and value is True:
            continue  # what agentlog sets anyway
        if name == "debug_stderr" and value is None:
            continue
        if treatment in (OWNED, REFUSED):
            verb = "agentlog owns it" if treatment == OWNED else "agentlog refuses it"
            problems.append(f"{name}: {verb} ({why}); leave it unset")
    if options.permission_mode == "bypassPermissions":
        problems.append(
            "permission_mode='bypassPermissions': agentlog refuses it (the operator's deny "
            "rules and approvals must apply); use allowed_tools"
        )
    if isinstance(options.mcp_servers, str | bytes) or not isinstance(options.mcp_servers, dict):
        problems.append("mcp_servers: give the servers as a dict, not a config file path")
    for variable in options.env:
        if AGENTLOG_VARIABLES.match(variable):
            problems.append(f"env: {variable} is set by agentlog; leave it out")
        elif SECRET_LOOKING.search(variable):
            problems.append(
                f"env: {variable} looks like a secret, and every tool the agent runs could read "
                "it; keep secrets in the server process (an in-process tool reads them there)"
            )
    gated = sorted(set(options.allowed_tools) & set(disabled_tools))
    if gated:
        problems.append(
            f"allowed_tools: {gated[0]} runs commands, writes files or reaches the network, and "
            f"the operator has not enabled it (AGENTLOG_ENABLE_TOOLS={gated[0]})"
        )
    return problems


def check(options: ClaudeAgentOptions, disabled_tools: Iterable[str] = ()) -> None:
    """Raise TeamOptionsRefused naming the first field agentlog cannot host."""
    problems = refusals(options, disabled_tools)
    if problems:
        raise TeamOptionsRefused(problems[0])
