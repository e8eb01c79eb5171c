"""Tool policy: deny rules from configuration, decided as a pure function."""

from __future__ import annotations

import pytest

from agentlog.infra.agent.run.policy import DenyRule, ToolPolicy, deny_output, parse_deny_rules


def test_rules_parse_tools_fields_and_patterns() -> None:
    assert parse_deny_rules(" Bash; Agent.run_in_background ,mcp__demo__* ;") == (
        DenyRule("Bash"),
        DenyRule("Agent", "run_in_background"),
        DenyRule("mcp__demo__*"),
    )
    assert parse_deny_rules("") == ()
    assert parse_deny_rules(None) == ()


@pytest.mark.parametrize("bad", ["Bash.", "Ba sh", "Agent.run-in-background", ".field"])
def test_a_malformed_rule_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match=r"is not `Tool` or `Tool\.field`"):
        parse_deny_rules(f"Read;{bad}")


def test_a_tool_rule_denies_every_call_of_that_tool_only() -> None:
    policy = ToolPolicy.from_config("Bash")
    assert policy.decide("Bash", {"command": "ls"}) == "Bash is disabled by policy in this session."
    assert policy.decide("Read", {"file_path": "/x"}) is None


def test_a_field_rule_denies_only_when_the_field_is_truthy() -> None:
    policy = ToolPolicy.from_config("Agent.run_in_background")
    assert policy.decide("Agent", {"prompt": "x", "run_in_background": True}) == (
        "Agent with run_in_background is not allowed by policy in this session."
    )
    assert policy.decide("Agent", {"prompt": "x", "run_in_background": False}) is None
    assert policy.decide("Agent", {"prompt": "x"}) is None
    assert policy.decide("Agent", None) is None


def test_task_and_agent_are_one_tool() -> None:
    background = {"run_in_background": True}
    assert ToolPolicy.from_config("Task.run_in_background").decide("Agent", background)
    assert ToolPolicy.from_config("Agent.run_in_background").decide("Task", background)


def test_patterns_match_mcp_tools() -> None:
    policy = ToolPolicy.from_config("mcp__demo__*")
    assert policy.decide("mcp__demo__slow_op", {}) is not None
    assert policy.decide("mcp__other__tool", {}) is None


def test_the_denial_is_a_pre_tool_use_deny_with_the_reason() -> None:
    assert deny_output("no") == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "no",
        }
    }
