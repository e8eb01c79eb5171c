"""The crash drill, shared by the fault test and `bench/crash_continue.py`: a turn that ran one
tool with a side effect and has a slow one in flight when its server is killed (-9)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from agentlog.infra.agent.offline.scenarios import SIDE_EFFECTS_FILE
from tests.e2e.test_runs_http import all_events, get_json, wait_until

SLOW_SECONDS = 60
DRILL_PROMPT = f"[scenario:append-then-slow] Append, then the slow operation for {SLOW_SECONDS} s"
SLOW_TOOL = "mcp__demo__slow_op"


def drill_env(lease_seconds: float, workspaces: Path) -> dict[str, str]:
    """What the drill's servers need: Bash on without approval (the side effect), a short
    lease (the crash is noticed one lease after the kill), a workspace root to count in."""
    return {
        "AGENTLOG_ENABLE_TOOLS": "Bash",
        "AGENTLOG_APPROVE_TOOLS": "",
        "AGENTLOG_RUN_LOCK_TTL_SECONDS": str(lease_seconds),
        "AGENTLOG_WORKSPACE_DIR": str(workspaces),
        "AGENTLOG_REDIS_URL": "",
    }


async def slow_tool_in_flight(http: aiohttp.ClientSession, base: str, sid: str) -> None:
    """Once the side effect's result and the slow tool's start are in the log."""

    async def check() -> bool:
        events = await all_events(http, base, sid)
        done = any(e["type"] == "tool_call_succeeded" for e in events)
        slow = any(e["type"] == "tool_call_started" and e["tool_name"] == SLOW_TOOL for e in events)
        return done and slow

    await wait_until(check, 90, interval=0.05, what="the slow tool to start")


async def turn_finished(
    http: aiohttp.ClientSession, base: str, sid: str, timeout: float = 90
) -> tuple[float, list[dict[str, Any]]]:
    """When (monotonic) the session's last run finished with no run open, and its log."""

    async def check() -> list[dict[str, Any]] | None:
        try:
            session = await get_json(http, f"{base}/v1/sessions/{sid}")
            events = await all_events(http, base, sid)
        except (aiohttp.ClientError, AssertionError):
            return None  # the restarted server is not up yet
        if session["active_run"] is None and events[-1]["type"] == "run_finished":
            return events
        return None

    events = await wait_until(check, timeout, interval=0.05, what="the continued turn to end")
    return time.monotonic(), list(events)


def side_effects(workspaces: Path) -> list[str]:
    """Every line the drill's side effect appended, in every workspace under the root."""
    return [
        line for path in workspaces.rglob(SIDE_EFFECTS_FILE) for line in path.read_text().split()
    ]
