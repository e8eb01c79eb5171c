"""The runner's configuration from AGENTLOG_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlog.infra.agent.config import DEFAULT_ALLOWED_TOOLS, AgentConfig
from agentlog.infra.agent.run.policy import DenyRule


def test_defaults_run_the_scripted_model_without_a_key() -> None:
    config = AgentConfig.from_env({})
    assert config.mode == "scripted"
    # The lease lives 8 s and is refreshed every 2 s, apart from the 15 s heartbeats: a dead
    # owner's session frees within seconds.
    assert (config.heartbeat_seconds, config.lock_ttl_seconds) == (15.0, 8.0)
    assert (config.lease_refresh_seconds, config.sweep_seconds) == (2.0, 2.0)
    assert config.policy.rules == (DenyRule("Agent", "run_in_background"),)
    assert config.allowed_tools == DEFAULT_ALLOWED_TOOLS
    assert config.include_partial_messages is True


def test_a_key_makes_the_real_model_the_default() -> None:
    assert AgentConfig.from_env({"ANTHROPIC_API_KEY": "sk-x"}).mode == "claude"
    assert AgentConfig.from_env(
        {"ANTHROPIC_API_KEY": "sk-x", "AGENTLOG_AGENT": "scripted"}
    ).mode == ("scripted")


def test_every_variable_is_read() -> None:
    config = AgentConfig.from_env(
        {
            "AGENTLOG_AGENT": "scripted",
            "AGENTLOG_HEARTBEAT_SECONDS": "30",
            "AGENTLOG_DENY_TOOLS": "Bash;Task.run_in_background",
            "AGENTLOG_ALLOWED_TOOLS": "Read, Grep",
            "AGENTLOG_AGENT_MODEL": "claude-opus-4-1",
            "AGENTLOG_WORKSPACE_DIR": "/srv/agentlog",
            "AGENTLOG_CONTINUE_AFTER_CRASH": "off",
            "AGENTLOG_MAX_CONTINUATIONS": "5",
            "AGENTLOG_NO_RETRY_TOOLS": "mcp__shop__charge, Bash",
        }
    )
    assert config.heartbeat_seconds == 30
    assert config.lock_ttl_seconds == 8  # the lease does not follow the heartbeat
    assert config.policy.decide("Bash", {}) is not None
    assert config.policy.decide("Agent", {"run_in_background": True}) is not None
    assert config.allowed_tools == ("Read", "Grep")
    assert config.model == "claude-opus-4-1"
    assert config.workspace_root == Path("/srv/agentlog")
    assert config.continue_after_crash is False and config.max_continuations == 5
    assert config.no_retry_tools == {"mcp__shop__charge", "Bash"}
    crash_defaults = AgentConfig.from_env({})
    assert crash_defaults.continue_after_crash and crash_defaults.max_continuations == 2
    assert AgentConfig.from_env({"AGENTLOG_DENY_TOOLS": ""}).policy.rules == ()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AGENTLOG_AGENT": "gpt"}, "AGENTLOG_AGENT='gpt'"),
        ({"AGENTLOG_AGENT": "claude"}, "needs ANTHROPIC_API_KEY"),
        ({"AGENTLOG_HEARTBEAT_SECONDS": "soon"}, "AGENTLOG_HEARTBEAT_SECONDS='soon'"),
        ({"AGENTLOG_HEARTBEAT_SECONDS": "0"}, "heartbeat_seconds must be positive"),
        ({"AGENTLOG_RUN_LOCK_TTL_SECONDS": "0"}, "TTL must be positive"),
        ({"AGENTLOG_DENY_TOOLS": "Bash.x.y"}, "AGENTLOG_DENY_TOOLS: deny rule 'Bash.x.y'"),
        ({"AGENTLOG_ENABLE_TOOLS": "Bash,Rm"}, "AGENTLOG_ENABLE_TOOLS: 'Rm' is not one of"),
        ({"AGENTLOG_ALLOWED_TOOLS": "Read,Bash"}, "enable it with AGENTLOG_ENABLE_TOOLS=Bash"),
        ({"AGENTLOG_SANDBOX": "maybe"}, "AGENTLOG_SANDBOX='maybe' must be 'on' or 'off'"),
        ({"AGENTLOG_RUN_MEMORY_MB": "1.5"}, "AGENTLOG_RUN_MEMORY_MB='1.5' must be a whole"),
        ({"AGENTLOG_RUN_PROCESSES": "0"}, "AGENTLOG_RUN_PROCESSES='0' must be a whole"),
        ({"AGENTLOG_CONTINUE_AFTER_CRASH": "yes"}, "AGENTLOG_CONTINUE_AFTER_CRASH='yes' must be"),
        ({"AGENTLOG_MAX_CONTINUATIONS": "-1"}, "AGENTLOG_MAX_CONTINUATIONS='-1' must be a whole"),
    ],
)
def test_a_bad_value_names_its_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        AgentConfig.from_env(environ)


def test_no_tool_that_runs_commands_or_writes_files_is_on_by_default() -> None:
    config = AgentConfig.from_env({})
    assert config.sandbox is True
    assert {"Bash", "BashOutput", "Write", "Edit", "MultiEdit", "WebFetch"} <= config.disabled_tools
    assert not set(config.agent_tools) & config.disabled_tools
    assert config.not_enabled("Bash") is not None and config.not_enabled("Read") is None


def test_enabling_bash_is_an_explicit_setting() -> None:
    config = AgentConfig.from_env({"AGENTLOG_ENABLE_TOOLS": "Bash", "AGENTLOG_SANDBOX": "off"})
    assert {"Bash", "BashOutput"} <= set(config.agent_tools)
    assert "Bash" not in config.disabled_tools and "Write" in config.disabled_tools
    assert config.not_enabled("Bash") is None
    assert config.sandbox is False
