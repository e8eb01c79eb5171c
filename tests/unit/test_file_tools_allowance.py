"""The check of the CLI's file tools against the workspace's limit (workspace_allowance.py):
what a call adds, and a burst of calls between two measurements still bounded."""

from __future__ import annotations

import json
from pathlib import Path

from agentlog.infra.agent.sandbox.workspace_allowance import (
    BLOCK,
    MIB,
    WorkspaceAllowance,
    added_bytes,
    arm_file_tools,
    workspace_refusal,
)


def no_size(path: str) -> int | None:
    return None


def test_a_write_adds_its_content_in_whole_blocks() -> None:
    assert added_bytes("Write", {"content": "é" * 3000}, no_size) == 2 * BLOCK
    assert added_bytes("Write", {"content": ""}, no_size) == 0


def test_an_edit_adds_what_its_new_string_grows_by_at_every_occurrence_it_can_meet() -> None:
    edit = {"file_path": "/w/a.txt", "old_string": "ab", "new_string": "a" * 5000}
    assert added_bytes("Edit", edit, no_size) == 2 * BLOCK
    # Ten bytes hold at most five "ab": 5 x 4,998 bytes, in whole blocks.
    assert added_bytes("Edit", {**edit, "replace_all": True}, lambda path: 10) == 7 * BLOCK
    shrinking = {"file_path": "/w/a.txt", "old_string": "abc", "new_string": "a"}
    assert added_bytes("Edit", shrinking, no_size) == 0
    many = {"file_path": "/w/a.txt", "edits": [edit, edit, shrinking]}
    assert added_bytes("MultiEdit", many, no_size) == 3 * BLOCK


def test_a_notebook_cell_adds_its_source_as_json() -> None:
    source = '"\n' * 2000  # each line grows when it is a JSON string
    added = added_bytes("NotebookEdit", {"new_source": source, "edit_mode": "insert"}, no_size)
    assert added is not None and added >= len(json.dumps(source.splitlines(keepends=True)))
    assert added_bytes("NotebookEdit", {"new_source": source, "edit_mode": "delete"}, no_size) == 0


def test_other_tools_are_not_file_tools() -> None:
    assert added_bytes("Bash", {"command": "yes > f"}, no_size) is None
    assert added_bytes("Read", {"file_path": "/etc/passwd"}, no_size) is None


def test_the_refusal_names_the_limit_and_its_setting() -> None:
    at = workspace_refusal("Write", 2 * MIB, 0, 2 * MIB)
    assert at is not None and "at its limit of 2 MB (AGENTLOG_RUN_WORKSPACE_MB)" in at
    past = workspace_refusal("Edit", MIB, MIB + 1, 2 * MIB)
    assert past is not None and "at its limit of 2 MB (AGENTLOG_RUN_WORKSPACE_MB)" in past
    assert workspace_refusal("Write", MIB, MIB, 2 * MIB) is None


def test_an_unarmed_allowance_refuses_nothing() -> None:
    assert WorkspaceAllowance().refusal("Write", {"content": "x" * 10 * MIB}) is None


def test_writes_let_through_between_two_measurements_count_until_the_next(
    tmp_path: Path,
) -> None:
    """A burst of Writes, each small enough, within the time a measurement is reused: the
    calls let through are counted, so the burst stops at the limit, not past it."""
    allowance = WorkspaceAllowance()
    allowance.arm(tmp_path, 10 * BLOCK)
    let_through = 0
    for _ in range(20):
        if allowance.refusal("Write", {"content": "x" * BLOCK}) is None:
            let_through += 1
    assert let_through == 10


def test_a_newer_measurement_of_the_tool_gate_is_taken(tmp_path: Path) -> None:
    figure: list[tuple[float, int]] = []
    allowance = WorkspaceAllowance()
    allowance.arm(tmp_path, 10 * BLOCK, lambda: figure[-1] if figure else None)
    assert allowance.refusal("Write", {"content": "x"}) is None  # measured: empty
    figure.append((float("inf"), 10 * BLOCK))  # the gate found it full since
    refusal = allowance.refusal("Write", {"content": "x"})
    assert refusal is not None and "at its limit" in refusal


def test_the_sandbox_arms_the_allowance_its_pre_tool_use_hook_carries(tmp_path: Path) -> None:
    from claude_agent_sdk import HookMatcher

    from agentlog.infra.agent.run.hooks import WorkspaceGuarded

    allowance = WorkspaceAllowance()

    async def hook(*args: object) -> dict[str, object]:
        return {}

    hooks = {"PreToolUse": [HookMatcher(hooks=[WorkspaceGuarded(hook, allowance)])]}
    assert arm_file_tools(hooks, tmp_path, MIB)
    assert allowance.workspace == tmp_path and allowance.limit == MIB
    assert not arm_file_tools({"PreToolUse": [HookMatcher(hooks=[hook])]}, tmp_path, MIB)
