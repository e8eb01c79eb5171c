"""What the bundled CLI does with a deferred tool call, from a real recording
(tests/agent/fixtures/defer-resume.json, made by record_defer_resume.py). agentlog's approvals
build on exactly these facts; test_approvals.py checks them again live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "defer-resume.json"


def turns(recording: dict[str, Any]) -> list[list[dict[str, Any]]]:
    split: list[list[dict[str, Any]]] = []
    for frame in recording["frames"]:
        if frame["dir"] == "note":
            split.append([])
        else:
            split[-1].append(frame)
    return split


def hook_calls(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        f["msg"]["request"]["input"]
        for f in frames
        if f["dir"] == "cli->sdk"
        and f["msg"].get("type") == "control_request"
        and f["msg"]["request"].get("subtype") == "hook_callback"
    ]


def tool_results(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        block
        for f in frames
        if f["dir"] == "cli->sdk" and f["msg"].get("type") == "user"
        for block in f["msg"]["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_a_resumed_session_asks_the_pre_tool_use_hook_again_for_the_deferred_call(
    decision: str,
) -> None:
    recording = json.loads(FIXTURE.read_text())[decision]
    first, resumed = turns(recording)
    [result] = [f["msg"] for f in first if f["msg"].get("type") == "result"]
    deferred = result["deferred_tool_use"]
    assert result["stop_reason"] == "tool_deferred"
    assert deferred["name"] == "mcp__demo__publish"
    assert [h["tool_use_id"] for h in hook_calls(first)] == [deferred["id"]]
    assert tool_results(first) == []  # the deferred call did not run

    # The CLI's transcript marks the call with a `hook_deferred_tool` attachment (agentlog's
    # rebuilt transcript writes the same line, and the resume needs it).
    last = recording["transcript_after_defer"][-1]
    assert last["type"] == "attachment"
    assert last["attachment"]["type"] == "hook_deferred_tool"
    assert last["attachment"]["toolUseID"] == deferred["id"]

    # Resumed with no prompt: the CLI settles the deferred call first, asking the hook again
    # with the same tool_use_id, and runs (or refuses) it once.
    assert not [f for f in resumed if f["dir"] == "sdk->cli" and f["msg"].get("type") == "user"]
    asked = hook_calls(resumed)
    assert [(h["hook_event_name"], h["tool_use_id"]) for h in asked] == [
        ("PreToolUse", deferred["id"])
    ]
    [settled] = tool_results(resumed)
    assert settled["tool_use_id"] == deferred["id"]
    if decision == "allow":
        assert settled["content"][0]["text"].startswith("published: hello world")
        assert not settled.get("is_error")
    else:
        assert settled["is_error"] is True
        assert "PreToolUse:mcp__demo__publish hook error: deny by experiment" in str(
            settled["content"]
        )
    [end] = [f["msg"] for f in resumed if f["msg"].get("type") == "result"]
    assert end["stop_reason"] == "end_turn" and end.get("deferred_tool_use") is None
