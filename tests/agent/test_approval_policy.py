"""AGENTLOG_APPROVE_TOOLS: which calls wait for a person's approval (pure, no agent)."""

from __future__ import annotations

import pytest

from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.run.policy import DEFAULT_APPROVAL_RULES, ApprovalPolicy


def test_by_default_commands_file_writes_and_the_demo_publish_tool_need_approval() -> None:
    policy = AgentConfig.from_env({}).approval
    for tool in ("Bash", "Write", "Edit", "MultiEdit", "NotebookEdit", "mcp__demo__publish"):
        assert policy.reason(tool, {}) is not None, tool
    for tool in ("Read", "Glob", "Grep", "mcp__demo__add", "mcp__demo__slow_op"):
        assert policy.reason(tool, {}) is None, tool
    assert AgentConfig().approval == ApprovalPolicy.from_config(DEFAULT_APPROVAL_RULES)
    assert AgentConfig.from_env({}).approval_grace_seconds == 3.0


def test_rules_take_names_globs_and_tool_fields() -> None:
    policy = AgentConfig.from_env(
        {"AGENTLOG_APPROVE_TOOLS": "mcp__demo__*; Agent.run_in_background"}
    ).approval
    assert policy.reason("mcp__demo__add", {"a": 1}) is not None
    assert policy.reason("Bash", {"command": "ls"}) is None
    assert policy.reason("Agent", {"run_in_background": True}) is not None
    assert policy.reason("Task", {"run_in_background": True}) is not None  # an alias
    assert policy.reason("Agent", {"run_in_background": False}) is None
    reason = policy.reason("mcp__demo__publish", {})
    assert reason is not None and "mcp__demo__publish" in reason


def test_an_empty_list_asks_for_nothing() -> None:
    policy = AgentConfig.from_env({"AGENTLOG_APPROVE_TOOLS": ""}).approval
    assert policy.reason("Bash", {"command": "rm -rf /"}) is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"AGENTLOG_APPROVE_TOOLS": "Bash(ls)"}, "AGENTLOG_APPROVE_TOOLS"),
        ({"AGENTLOG_APPROVAL_GRACE_SECONDS": "soon"}, "AGENTLOG_APPROVAL_GRACE_SECONDS"),
        ({"AGENTLOG_APPROVAL_GRACE_SECONDS": "-1"}, "AGENTLOG_APPROVAL_GRACE_SECONDS"),
    ],
)
def test_a_malformed_value_names_its_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        AgentConfig.from_env(environ)
