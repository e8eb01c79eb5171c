"""Exported sessions for the import and export tests: a session with varied payloads and a
transcript, its export, and exports compared without their positions (global to a database)."""

from __future__ import annotations

import asyncio
import re

from agentlog.domain.events import (
    AgentErrorReported,
    CustomEventRecorded,
    HeartbeatRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    TextCompleted,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.sessions.importing import export_lines
from agentlog.infra.store.base import StoreBase
from tests.integration.projection_helpers import a_run

POSITION = re.compile(rb',"position":\d+')


async def fill(store: StoreBase, session_id: str = "chat-1") -> None:
    """A session with varied payloads, written over several appends (several times)."""
    await store.append(
        session_id, [SessionCreated(title="démo ✓", metadata={"n": 1.5, "nested": [None, True]})]
    )
    await store.append(session_id, a_run("r1", tools=3, words=4))
    await asyncio.sleep(0.002)
    await store.append(
        session_id,
        [
            CustomEventRecorded(name="note", data={"line": "a\nb\t\x1b[31m", "big": 2**62}),
            RunStarted(run_id="r2", prompt="🙂 again"),
            ToolCallStarted(run_id="r2", tool_call_id="c1", tool_name="mcp__x__y", input=[1, 2]),
            AgentErrorReported(run_id="r2", kind="rate_limit", message="slow down", status=429),
            HeartbeatRecorded(run_id="r2"),
        ],
    )
    await store.append(
        session_id,
        [
            ToolCallSucceeded(run_id="r2", tool_call_id="c1", output={"x": 0.1}),
            TextCompleted(run_id="r2", message_id="m", text="done"),
            RunFinished(run_id="r2", result="ok", total_cost_usd=0.0123, usage={"a": 1}),
        ],
    )


async def export(store: StoreBase, session_id: str) -> list[bytes]:
    return [line async for line in export_lines(store, session_id)]


def without_positions(lines: list[bytes]) -> list[bytes]:
    return [POSITION.sub(b"", line) for line in lines]


AGENT = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


async def with_transcript(store: StoreBase, session_id: str = "chat-1") -> list[object]:
    """The session's runs left a transcript (main and a subagent's), as the runner's store
    writes it: bound to the session, under the runner's project key."""
    bound = LogSessionStore(store).for_session(session_id)
    main = [
        {"type": "user", "uuid": "u1", "message": {"content": "hello ✓"}},
        {"type": "last-prompt", "lastPrompt": "hello"},  # no uuid: kept in order too
        {"type": "assistant", "uuid": "a1", "message": {"content": [{"type": "text"}]}},
    ]
    sub = [{"type": "user", "uuid": "s1", "isSidechain": True}]
    await bound.append({"project_key": RUNNER_PROJECT_KEY, "session_id": AGENT}, main)  # type: ignore[list-item]
    await bound.append(
        {"project_key": RUNNER_PROJECT_KEY, "session_id": AGENT, "subpath": "subagents/agent-1"},
        sub,  # type: ignore[arg-type]
    )
    return [main, sub]
