"""The PreToolUse hook never lets a call that needs approval through unasked: a call with no
`tool_use_id` (nothing to key the approval on) is denied (issue 19: it was allowed)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from agentlog.infra.agent.run.approval_gate import ApprovalGate
from agentlog.infra.agent.run.hooks import run_hooks
from agentlog.infra.agent.run.policy import ApprovalPolicy, ToolPolicy
from agentlog.infra.agent.run.recorder import RunRecorder
from agentlog.infra.agent.sdk.translate import SdkTranslator


class _NeverAsked:
    """A gate the hook must not reach: asking needs a call id."""

    def approval_id(self, tool_call_id: str) -> tuple[str, bool]:
        raise AssertionError("asked about a call without an id")


def _pre_tool_use() -> Any:
    hooks = run_hooks(
        cast("SdkTranslator", None),
        cast("RunRecorder", None),
        ToolPolicy(),
        approval=ApprovalPolicy.from_config("Bash"),
        gate=cast("ApprovalGate", _NeverAsked()),
    )
    return hooks["PreToolUse"][0].hooks[0]


@pytest.mark.parametrize("tool_use_id", [None, ""])
async def test_a_call_needing_approval_without_a_tool_use_id_is_denied(
    tool_use_id: str | None,
) -> None:
    data = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}}
    output = await _pre_tool_use()(data, tool_use_id, {"signal": None})
    decision = output["hookSpecificOutput"]
    assert decision["permissionDecision"] == "deny"
    assert "no tool_use_id" in decision["permissionDecisionReason"]


async def test_a_call_needing_no_approval_is_unaffected() -> None:
    data = {"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_input": {}}
    output = await _pre_tool_use()(data, None, {"signal": None})
    assert output.get("hookSpecificOutput", {}).get("permissionDecision") != "deny"
