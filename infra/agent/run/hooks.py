"""The SDK hooks of a run: PreToolUse applies the deny policy, then the approval policy
(ask, wait a short grace, else `defer`; see `approval_gate.py`), PostToolUse and
PostToolUseFailure report tool results. All of them record through the run's translator and
recorder, the same path as the message stream, so each tool call ends exactly once.

A team's own hooks (its `ClaudeAgentOptions.hooks`) run inside agentlog's, not beside them:
the SDK runs the callbacks of one event concurrently, so two matchers could not be ordered,
and a team's deny could not be recorded. For PreToolUse: the operator's deny rules first (a
denied call never reaches the team's code) and the workspace's limit for the CLI's own file
tools (workspace_allowance.py: the tool gate never sees them), then the team's hooks in their
order (a deny ends it and is recorded like agentlog's; an "ask" goes to agentlog's approval
gate), then the operator's approval rules. For PostToolUse(Failure): agentlog records, then
the team's hooks run. Other events get the team's matchers as they are.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from claude_agent_sdk import (
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ToolPermissionContext,
)

from agentlog.infra.agent.run.approval_gate import ApprovalGate
from agentlog.infra.agent.run.policy import (
    ApprovalPolicy,
    ToolPolicy,
    allow_output,
    defer_output,
    deny_output,
)
from agentlog.infra.agent.run.recorder import RunRecorder
from agentlog.infra.agent.run.tool_permits import ToolPermits
from agentlog.infra.agent.sandbox.workspace_allowance import FILE_TOOLS, WorkspaceAllowance
from agentlog.infra.agent.sdk.translate import SdkTranslator

log = logging.getLogger(__name__)
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
Hooks = Mapping[Any, list[HookMatcher]]


def run_hooks(
    translator: SdkTranslator,
    recorder: RunRecorder,
    policy: ToolPolicy,
    not_enabled: Callable[[str], str | None] = lambda name: None,
    approval: ApprovalPolicy | None = None,
    gate: ApprovalGate | None = None,
    team_hooks: Hooks | None = None,
    permits: ToolPermits | None = None,
    workspace: WorkspaceAllowance | None = None,
) -> dict[Any, list[HookMatcher]]:
    """The `hooks` option for one run. `not_enabled` denies the tools the operator did not
    turn on (AgentConfig.not_enabled), before the deny rules are asked. `team_hooks`: the
    team agent's own, run as the module docstring says. `permits`: each call PreToolUse lets
    through is granted there (an in-process tool runs only for those, tool_permits.py).
    `workspace`: what the file tools may add to the workspace, asked with the deny rules; by
    default the run's own, which the sandbox arms with the workspace's limit when it
    confines the run (RunSandbox.confine finds it on the PreToolUse hook)."""
    team = dict(team_hooks or {})
    allowance = workspace if workspace is not None else WorkspaceAllowance()

    async def pre_tool_use(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        output = await decide_pre_tool_use(data, tool_use_id, context)
        call_id = tool_use_id or dict(data).get("tool_use_id")
        let_through = _decision(output)[0] not in ("deny", "defer")
        if permits is not None and isinstance(call_id, str) and let_through:
            permits.grant(call_id, str(dict(data).get("tool_name", "")))
        return output

    # Each callback decides and queues in one step (no await in between), so whichever
    # of a hook and the transcript reports a call's end first is the one recorded.
    async def decide_pre_tool_use(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        hook = dict(data)
        name = str(hook.get("tool_name", ""))
        tool_input = hook.get("tool_input")
        fields = tool_input if isinstance(tool_input, dict) else None
        reason = not_enabled(name) or policy.decide(name, fields)
        if reason is None and allowance.workspace is not None and name in FILE_TOOLS:
            # Measuring walks the workspace: in a thread, not on the server's loop.
            reason = await asyncio.to_thread(allowance.refusal, name, fields)
        call_id = tool_use_id or hook.get("tool_use_id")
        if reason is not None:
            _record_denial(call_id, reason, name, tool_input)
            return deny_output(reason)  # type: ignore[return-value]
        asking = approval.reason(name, fields) if approval is not None else None
        said: dict[str, Any] = {}
        for team_hook in _matching(team.get("PreToolUse"), name):
            output = await _team_output(team_hook, data, tool_use_id, context, deny_on_error=True)
            decision, why = _decision(output)
            if decision == "deny":
                refusal = why or f"{name} was denied by the agent's PreToolUse hook."
                _record_denial(call_id, refusal, name, tool_input)
                return output  # type: ignore[return-value]
            if decision == "ask" and asking is None:
                asking = why or f"{name} needs your approval (the agent's hook asks)."
            said = _merged(said, output)
        if asking is not None and gate is not None:
            if not isinstance(call_id, str) or not call_id:
                # An approval is asked, answered and recorded by its call's id: without one
                # nobody can be asked, and letting the call through would skip the approval.
                return deny_output(  # type: ignore[return-value]
                    f"{name} needs approval, but the call has no tool_use_id to ask about."
                )
            answer = await _ask(call_id, name, tool_input, asking, gate)
            decided = answer["hookSpecificOutput"]["permissionDecision"]
            return answer if decided != "allow" else _merged(said, answer)  # type: ignore[return-value]
        if _decision(said)[0] == "ask":
            # Nobody could ask (no gate, or no call id): never let "ask" become a silent yes.
            said["hookSpecificOutput"].pop("permissionDecision", None)
        return said  # type: ignore[return-value]

    def _record_denial(call_id: Any, reason: str, name: str, tool_input: Any) -> None:
        if isinstance(call_id, str):
            recorder.record(
                translator.denied(call_id, reason, tool_name=name, tool_input=tool_input)
            )

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
        return await _then_team("PostToolUse", data, tool_use_id, context)  # type: ignore[return-value]

    async def post_tool_use_failure(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        recorder.record(translator.post_tool_use_failure(_with_id(data, tool_use_id)))
        return await _then_team("PostToolUseFailure", data, tool_use_id, context)  # type: ignore[return-value]

    async def _then_team(
        event: str, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> dict[str, Any]:
        said: dict[str, Any] = {}
        for team_hook in _matching(team.get(event), str(dict(data).get("tool_name", ""))):
            output = await _team_output(team_hook, data, tool_use_id, context, deny_on_error=False)
            said = _merged(said, output)
        return said

    hooks: dict[Any, list[HookMatcher]] = {
        event: matchers for event, matchers in team.items() if event not in TOOL_EVENTS
    }
    hooks["PreToolUse"] = [HookMatcher(hooks=[WorkspaceGuarded(pre_tool_use, allowance)])]
    hooks["PostToolUse"] = [HookMatcher(hooks=[post_tool_use])]
    hooks["PostToolUseFailure"] = [HookMatcher(hooks=[post_tool_use_failure])]
    return hooks


class WorkspaceGuarded:
    """agentlog's PreToolUse callback, carrying the run's `workspace_allowance`: the sandbox
    is made after the hooks and arms it (bubblewrap.arm_file_tools)."""

    def __init__(self, callback: Any, workspace_allowance: WorkspaceAllowance) -> None:
        self.callback = callback
        self.workspace_allowance = workspace_allowance

    async def __call__(
        self, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        return await self.callback(data, tool_use_id, context)  # type: ignore[no-any-return]


def recorded_permission(
    team_can_use_tool: Any, translator: SdkTranslator, recorder: RunRecorder
) -> Any:
    """The team's `can_use_tool`, asked as it is; a denial it gives is recorded as
    `tool_call_denied`, like agentlog's own."""

    async def can_use_tool(
        name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResultAllow | PermissionResultDeny:
        result = await team_can_use_tool(name, tool_input, context)
        if isinstance(result, PermissionResultDeny) and context.tool_use_id:
            reason = result.message or f"{name} was denied by the agent's can_use_tool."
            recorder.record(
                translator.denied(
                    context.tool_use_id, reason, tool_name=name, tool_input=tool_input
                )
            )
        return result  # type: ignore[no-any-return]

    return can_use_tool


def _matching(matchers: list[HookMatcher] | None, tool_name: str) -> list[Any]:
    """The callbacks of `matchers` whose pattern matches the tool, in order (the CLI's rules:
    none or "*" matches every tool, "A|B" names tools, anything else is a regex)."""
    found: list[Any] = []
    for matcher in matchers or []:
        pattern = matcher.matcher
        if pattern in (None, "", "*"):
            matched = True
        elif re.fullmatch(r"[\w|]+", pattern):
            matched = tool_name in pattern.split("|")
        else:
            try:
                matched = re.search(pattern, tool_name) is not None
            except re.error:
                matched = False
        if matched:
            found += [(hook, matcher.timeout) for hook in matcher.hooks]
    return found


async def _team_output(
    team_hook: tuple[Any, float | None],
    data: HookInput,
    tool_use_id: str | None,
    context: HookContext,
    *,
    deny_on_error: bool,
) -> dict[str, Any]:
    """What a team hook answered; a hook that fails or times out denies a PreToolUse
    (fail closed: it may have been the check that would have said no)."""
    hook, timeout = team_hook
    try:
        async with asyncio.timeout(timeout):
            output = await hook(data, tool_use_id, context)
    except Exception as exc:  # noqa: BLE001 - the team's code can raise anything
        log.warning("the agent's %s hook failed: %r", getattr(hook, "__qualname__", hook), exc)
        if not deny_on_error:
            return {}
        return deny_output(f"The agent's hook failed: {type(exc).__name__}: {exc}")
    return dict(output or {})


def _decision(output: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A PreToolUse answer's decision ("allow", "deny", "ask", "defer") and its reason."""
    specific = output.get("hookSpecificOutput") or {}
    decision = specific.get("permissionDecision")
    reason = specific.get("permissionDecisionReason") or output.get("reason")
    if decision is None and output.get("decision") == "block":  # the older form of deny
        decision = "deny"
    return decision, reason


def _merged(first: dict[str, Any], then: Mapping[str, Any]) -> dict[str, Any]:
    """Two hook answers as one: later keys win, `hookSpecificOutput` merged key by key."""
    merged = {**first, **then}
    if "hookSpecificOutput" in first and "hookSpecificOutput" in then:
        merged["hookSpecificOutput"] = {**first["hookSpecificOutput"], **then["hookSpecificOutput"]}
    return merged


def _with_id(data: HookInput, tool_use_id: str | None) -> dict[str, Any]:
    hook = dict(data)
    if tool_use_id and not hook.get("tool_use_id"):
        hook["tool_use_id"] = tool_use_id
    return hook
