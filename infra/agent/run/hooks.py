"""The SDK hooks of a run: PreToolUse applies the deny policy, then the approval policy
(ask, wait a short grace, else `defer`; see `approval_gate.py`), PostToolUse and
PostToolUseFailure report tool results. All of them record through the run's translator and
recorder, the same path as the message stream, so each tool call ends exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentlog.infra.agent.run.approval_gate import ApprovalGate
from agentlog.infra.agent.run.policy import (
    ApprovalPolicy,
    ToolPolicy,
    allow_output,
    defer_output,
    deny_output,
)
from agentlog.infra.agent.run.recorder import RunRecorder
from agentlog.infra.agent.sdk.translate import SdkTranslator
from claude_agent_sdk import HookContext, HookInput, HookJSONOutput, HookMatcher


def run_hooks(
    translator: SdkTranslator,
    recorder: RunRecorder,
    policy: ToolPolicy,
    not_enabled: Callable[[str], str | None] = lambda name: None,
    approval: ApprovalPolicy | None = None,
    gate: ApprovalGate | None = None,
) -> dict[Any, list[HookMatcher]]:
    """The `hooks` option for one run. `not_enabled` denies the tools the operator did not
    turn on (AgentConfig.not_enabled), before the deny rules are asked."""

    # Each callback decides and queues in one step (no await in between), so whichever
    # of a hook and the transcript reports a call's end first is the one recorded.
    async def pre_tool_use(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        hook = dict(data)
        name = str(hook.get("tool_name", ""))
        tool_input = hook.get("tool_input")
        fields = tool_input if isinstance(tool_input, dict) else None
        reason = not_enabled(name) or policy.decide(name, fields)
        call_id = tool_use_id or hook.get("tool_use_id")
        if reason is None:
            asking = approval.reason(name, fields) if approval is not None else None
            if asking is None or gate is None or not isinstance(call_id, str):
                return {}
            return await _ask(call_id, name, tool_input, asking, gate)  # type: ignore[return-value]
        if isinstance(call_id, str):
            recorder.record(
                translator.denied(call_id, reason, tool_name=name, tool_input=tool_input)
            )
        return deny_output(reason)  # type: ignore[return-value]

    async def _ask(
        call_id: str, name: str, tool_input: Any, reason: str, gate: ApprovalGate
    ) -> dict[str, Any]:
        """Ask once per call (a resumed turn asks again: the request is found, not repeated),
        then allow, deny with the person's reason, or defer the call to a later turn."""
        approval_id, asked = gate.approval_id(call_id)
        if not asked:
            recorder.record(
                translator.approval_requested(
                    call_id, approval_id, tool_name=name, tool_input=tool_input, reason=reason
                )
            )
        response = await gate.answer(approval_id, recorder)
        if response is None:
            translator.park(call_id)
            return defer_output(reason)
        if response.approved:
            return allow_output()
        refusal = "The user denied this tool call" + (
            f": {response.reason}" if response.reason else "."
        )
        recorder.record(translator.denied(call_id, refusal, tool_name=name, tool_input=tool_input))
        return deny_output(refusal)

    async def post_tool_use(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        recorder.record(translator.post_tool_use(_with_id(data, tool_use_id)))
        return {}

    async def post_tool_use_failure(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        recorder.record(translator.post_tool_use_failure(_with_id(data, tool_use_id)))
        return {}

    return {
        "PreToolUse": [HookMatcher(hooks=[pre_tool_use])],
        "PostToolUse": [HookMatcher(hooks=[post_tool_use])],
        "PostToolUseFailure": [HookMatcher(hooks=[post_tool_use_failure])],
    }


def _with_id(data: HookInput, tool_use_id: str | None) -> dict[str, Any]:
    hook = dict(data)
    if tool_use_id and not hook.get("tool_use_id"):
        hook["tool_use_id"] = tool_use_id
    return hook
