"""The SDK hooks of a run: PreToolUse applies the deny policy, PostToolUse and
PostToolUseFailure report tool results. All of them record through the run's translator and
recorder, the same path as the message stream, so each tool call ends exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from claude_agent_sdk import HookContext, HookInput, HookJSONOutput, HookMatcher

from infra.agent.policy import ToolPolicy, deny_output
from infra.agent.recorder import RunRecorder
from infra.agent.translate import SdkTranslator


def run_hooks(
    translator: SdkTranslator,
    recorder: RunRecorder,
    policy: ToolPolicy,
    not_enabled: Callable[[str], str | None] = lambda name: None,
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
        reason = not_enabled(name) or policy.decide(
            name, tool_input if isinstance(tool_input, dict) else None
        )
        if reason is None:
            return {}
        call_id = tool_use_id or hook.get("tool_use_id")
        if isinstance(call_id, str):
            recorder.record(
                translator.denied(call_id, reason, tool_name=name, tool_input=tool_input)
            )
        return deny_output(reason)  # type: ignore[return-value]

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
