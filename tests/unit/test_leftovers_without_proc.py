"""Where /proc cannot be read (not Linux), a run has no leftover processes to find: the
lookups answer empty instead of failing (mypy found `return []` where a dict was promised)."""

from __future__ import annotations

import pytest

from agentlog.infra.agent.recovery import leftovers


def test_without_proc_a_run_has_no_processes_and_no_resume_directories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreadable(path: str) -> list[str]:
        raise PermissionError(path)

    monkeypatch.setattr(leftovers.os, "listdir", unreadable)
    assert leftovers.agent_process_ids("run-1") == []
    assert leftovers.resume_directories("run-1") == set()
