"""A team's ClaudeAgentOptions: which fields agentlog refuses, naming agents, and fingerprints."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import ClaudeAgentOptions, HookMatcher, create_sdk_mcp_server

from agentlog.infra.agent.agents.catalog import AgentReference, parse_references
from agentlog.infra.agent.agents.fingerprint import agent_fingerprint
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.sdk.team_options import FIELDS, check, refusals

GATED = AgentConfig().disabled_tools


def test_every_field_of_the_sdk_options_has_a_treatment() -> None:
    # A field added by a newer SDK fails here first: classify it (and docs/your-agent.md).
    assert sorted(f.name for f in dataclasses.fields(ClaudeAgentOptions)) == sorted(FIELDS)


def test_the_readme_example_is_hosted_as_written() -> None:
    options = ClaudeAgentOptions(
        system_prompt="You are Acme's support agent.",
        mcp_servers={"acme": create_sdk_mcp_server("acme", tools=[])},
        allowed_tools=["mcp__acme__lookup_order"],
        model="claude-sonnet-4-5",
        env={"ACME_REGION": "eu"},
        include_partial_messages=True,  # what agentlog sets anyway
        permission_mode="default",
    )
    assert refusals(options, GATED) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cwd": "/srv/acme"}, "cwd: agentlog owns it (the session's workspace)"),
        ({"resume": "abc"}, "resume: agentlog owns it"),
        ({"session_id": "abc"}, "session_id: agentlog owns it"),
        ({"cli_path": "/usr/bin/claude"}, "cli_path: agentlog owns it (the sandbox launcher)"),
        ({"continue_conversation": True}, "continue_conversation: agentlog owns it"),
        ({"stderr": print}, "stderr: agentlog owns it"),
        ({"extra_args": {"permission-mode": "bypassPermissions"}}, "extra_args: agentlog refuses"),
        ({"settings": "{}"}, "settings: agentlog refuses it"),
        ({"add_dirs": ["/etc"]}, "add_dirs: agentlog refuses it"),
        ({"user": "root"}, "user: agentlog refuses it"),
        ({"permission_mode": "bypassPermissions"}, "permission_mode='bypassPermissions'"),
        ({"mcp_servers": "/srv/mcp.json"}, "mcp_servers: give the servers as a dict"),
        ({"env": {"ACME_API_KEY": "k"}}, "env: ACME_API_KEY looks like a secret"),
        ({"env": {"DB_PASSWORD": "k"}}, "env: DB_PASSWORD looks like a secret"),
        ({"env": {"ANTHROPIC_BASE_URL": "http://x"}}, "env: ANTHROPIC_BASE_URL is set by agentlog"),
        ({"env": {"HOME": "/root"}}, "env: HOME is set by agentlog"),
        ({"allowed_tools": ["Read", "Bash"]}, "allowed_tools: Bash runs commands"),
        ({"allowed_tools": ["WebFetch"]}, "allowed_tools: WebFetch runs"),
    ],
)
def test_an_option_agentlog_must_own_or_cannot_honour_is_refused_by_name(
    options: dict[str, Any], message: str
) -> None:
    problems = refusals(ClaudeAgentOptions(**options), GATED)
    assert len(problems) == 1 and problems[0].startswith(message), problems
    with pytest.raises(ValueError) as raised:
        check(ClaudeAgentOptions(**options), GATED)
    assert str(raised.value) == problems[0]


def test_a_tool_the_operator_enabled_may_be_allowed() -> None:
    enabled = AgentConfig(enabled_tools=frozenset({"Bash"})).disabled_tools
    assert refusals(ClaudeAgentOptions(allowed_tools=["Bash"]), enabled) == []


def test_an_option_the_table_does_not_know_is_refused_when_set() -> None:
    @dataclasses.dataclass
    class NewerOptions(ClaudeAgentOptions):
        teleport: bool = False

    assert refusals(NewerOptions(), GATED) == []
    assert refusals(NewerOptions(teleport=True), GATED) == [
        "teleport: agentlog refuses it (agentlog does not know this option yet); leave it unset"
    ]


def test_names_come_from_both_variables_with_the_default_first() -> None:
    assert parse_references("acme.agent:support", "billing=acme.agent:billing") == (
        AgentReference("default", "acme.agent:support", "AGENTLOG_AGENT"),
        AgentReference("billing", "acme.agent:billing", "AGENTLOG_AGENTS"),
    )
    # The default keeps the name AGENTLOG_AGENTS gives it.
    assert parse_references("acme.agent:billing", "support=a:b, billing=acme.agent:billing") == (
        AgentReference("billing", "acme.agent:billing", "AGENTLOG_AGENTS"),
        AgentReference("support", "a:b", "AGENTLOG_AGENTS"),
    )
    assert parse_references(None, None) == ()


@pytest.mark.parametrize(
    ("default", "named", "message"),
    [
        ("acme.agent", None, "AGENTLOG_AGENT='acme.agent' must be"),
        ("acme agent:x", None, "AGENTLOG_AGENT='acme agent:x' must be"),
        (None, "support", "AGENTLOG_AGENTS: 'support' is not name=module:attribute"),
        (None, "support=acme", "AGENTLOG_AGENTS: 'support=acme' is not"),
        (None, "a=x:y,a=x:z", "AGENTLOG_AGENTS: the name 'a' is used twice"),
        (None, "demo=x:y", "the name 'demo' is used twice or reserved"),
        ("x:y", "default=x:z", "'default' names the agent of AGENTLOG_AGENT"),
    ],
)
def test_a_malformed_agent_setting_names_its_variable(
    default: str | None, named: str | None, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        parse_references(default, named)
    assert message in str(raised.value)


def test_the_model_mode_follows_the_key_when_the_variable_names_a_module() -> None:
    offline = AgentConfig.from_env({"AGENTLOG_AGENT": "acme.agent:support"})
    assert offline.mode == "scripted"
    assert offline.agents == (AgentReference("default", "acme.agent:support", "AGENTLOG_AGENT"),)
    online = AgentConfig.from_env({"AGENTLOG_AGENT": "acme:x", "ANTHROPIC_API_KEY": "sk-x"})
    assert online.mode == "claude"
    named = AgentConfig.from_env({"AGENTLOG_AGENT": "scripted", "AGENTLOG_AGENTS": "s=acme:x"})
    assert (named.mode, [a.name for a in named.agents]) == ("scripted", ["s"])


async def team_hook(data: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
    return {}


def test_the_fingerprint_is_stable_and_follows_what_the_agent_is_told(tmp_path: Path) -> None:
    def options(**changes: Any) -> ClaudeAgentOptions:
        settings: dict[str, Any] = {
            "system_prompt": "You are Acme's support agent.",
            "mcp_servers": {
                "acme": create_sdk_mcp_server("acme", tools=[]),
                "shipping": {"type": "stdio", "command": "/usr/bin/python3", "args": ["s.py"]},
            },
            "allowed_tools": ["mcp__acme__lookup_order"],
            "hooks": {"PreToolUse": [HookMatcher(matcher="Bash", hooks=[team_hook])]},
            "env": {"ACME_REGION": "eu"},
        }
        return ClaudeAgentOptions(**{**settings, **changes})

    first = agent_fingerprint(options())
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 16
    # A new server object of the same name, or another env value: the same agent.
    assert agent_fingerprint(options()) == first
    assert agent_fingerprint(options(env={"ACME_REGION": "us"})) == first
    for changed in (
        options(system_prompt="You are Acme's billing agent."),
        options(model="claude-opus-4-1"),
        options(allowed_tools=[]),
        options(mcp_servers={"acme": create_sdk_mcp_server("acme", tools=[])}),
        options(hooks=None),
    ):
        assert agent_fingerprint(changed) != first
    assert agent_fingerprint(options(), "template-a") != agent_fingerprint(options(), "template-b")


def test_the_docs_list_every_field_with_its_treatment() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "your-agent.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (passed|merged|owned|refused) \|", doc, re.M)
    assert dict(rows) == {name: treatment for name, (treatment, _) in FIELDS.items()}
