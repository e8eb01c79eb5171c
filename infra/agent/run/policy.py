"""Tool policy: PreToolUse deny rules and approval rules from configuration.

`AGENTLOG_APPROVE_TOOLS` uses the same rule syntax as the deny rules below: a call that matches
one waits for a person's answer (see `infra/agent/run/approval_gate.py`); denials apply first.

`AGENTLOG_DENY_TOOLS` lists rules separated by `;` (or `,`):
- `Bash` denies every call of that tool;
- `Agent.run_in_background` denies a call whose input field `run_in_background` is truthy
  (the AutoGPT copilot's rule: no background sub-agents, their results would never come back);
- the tool part may be a shell-style pattern (`mcp__demo__*`).

`Task` and `Agent` name the same tool (the CLI renamed Task to Agent in 2.1), so a rule for
either matches both.

A denial is answered through the PreToolUse hook, so the CLI tells the model
"PreToolUse:<Tool> hook error: <reason>" as the call's error result, and the runner records
`tool_call_denied` with the same reason for the UI.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

# Names the CLI has used for one tool; rules and calls are compared by the canonical name.
_ALIASES = {"Task": "Agent"}


def _canonical(tool_name: str) -> str:
    return _ALIASES.get(tool_name, tool_name)


@dataclass(frozen=True)
class DenyRule:
    """Deny `tool` (a name or pattern), or only when input `field` is truthy."""

    tool: str
    field: str | None = None

    def matches(self, tool_name: str, tool_input: Mapping[str, Any] | None) -> bool:
        if not fnmatch.fnmatchcase(_canonical(tool_name), _canonical(self.tool)):
            return False
        if self.field is None:
            return True
        return bool((tool_input or {}).get(self.field))

    def reason(self, tool_name: str) -> str:
        if self.field is None:
            return f"{tool_name} is disabled by policy in this session."
        return f"{tool_name} with {self.field} is not allowed by policy in this session."

    def __str__(self) -> str:
        return self.tool if self.field is None else f"{self.tool}.{self.field}"


_RULE = re.compile(r"\A(?P<tool>[A-Za-z0-9_*?\[\]-]+)(?:\.(?P<field>[A-Za-z_][A-Za-z0-9_]*))?\Z")


def parse_deny_rules(text: str | None) -> tuple[DenyRule, ...]:
    """Rules from `AGENTLOG_DENY_TOOLS`; raises ValueError naming a malformed rule."""
    rules: list[DenyRule] = []
    for raw in re.split(r"[;,]", text or ""):
        item = raw.strip()
        if not item:
            continue
        match = _RULE.match(item)
        if match is None:
            raise ValueError(
                f"deny rule {item!r} is not `Tool` or `Tool.field` "
                "(e.g. Bash;Agent.run_in_background)"
            )
        rules.append(DenyRule(match["tool"], match["field"]))
    return tuple(rules)


@dataclass(frozen=True)
class ToolPolicy:
    """The deny rules of one deployment; `decide` is pure."""

    rules: tuple[DenyRule, ...] = ()
    # Tools this run must not call again: a crash interrupted them and they are marked not to
    # be retried (agentlog.domain.rules.crash_continuation).
    not_again: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, text: str | None) -> ToolPolicy:
        return cls(parse_deny_rules(text))

    def refusing_again(self, tools: frozenset[str]) -> ToolPolicy:
        """This policy, also refusing every call of `tools` (for one run)."""
        return replace(self, not_again=self.not_again | tools) if tools else self

    def decide(self, tool_name: str, tool_input: Mapping[str, Any] | None) -> str | None:
        """The reason to deny this call, or None to let it through."""
        if _canonical(tool_name) in {_canonical(t) for t in self.not_again}:
            return (
                f"{tool_name} was interrupted by a server restart in this turn and is marked "
                "not to be retried: it is not run again in this turn."
            )
        for rule in self.rules:
            if rule.matches(tool_name, tool_input):
                return rule.reason(tool_name)
        return None


def deny_output(reason: str) -> dict[str, Any]:
    """The PreToolUse hook answer that denies the call; the CLI shows `reason` to the model."""
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }


# Tools that run commands or write files, and the demo tool that stands in for an action with
# effects outside the session, so approvals show offline.
DEFAULT_APPROVAL_RULES = "Bash;Write;Edit;MultiEdit;NotebookEdit;mcp__demo__publish"


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which calls need a person's yes; `reason` is pure."""

    rules: tuple[DenyRule, ...] = ()

    @classmethod
    def from_config(cls, text: str | None) -> ApprovalPolicy:
        return cls(parse_deny_rules(text))

    def reason(self, tool_name: str, tool_input: Mapping[str, Any] | None) -> str | None:
        """Why this call needs approval, or None when it may run without asking."""
        for rule in self.rules:
            if rule.matches(tool_name, tool_input):
                if rule.field is None:
                    return f"{tool_name} needs your approval in this session ({rule})."
                return f"{tool_name} with {rule.field} needs your approval ({rule})."
        return None


def allow_output() -> dict[str, Any]:
    """The PreToolUse answer that lets an approved call run."""
    return {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}}


def defer_output(reason: str) -> dict[str, Any]:
    """The PreToolUse answer that stops the turn until the call is approved: the CLI ends the
    turn with `deferred_tool_use` and, when the session is resumed, asks this hook again."""
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "defer",
            "permissionDecisionReason": reason,
        }
    }
