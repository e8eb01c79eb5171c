"""A team's agent follows its session across server processes: on PostgreSQL, a session of the
example's `support` agent is started on one `agentlog serve`, its next turn runs on another
(resuming the CLI session from the store, with the agent the session chose and its metadata),
and a regenerate on that other instance runs with the same agent and the same version of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT
from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    all_events,
    http,
    run_ended,
    servers,
    start,
    start_run,
)
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AGENTS = "support=examples.support_agent.agent:agent,billing=examples.support_agent.agent:billing"
REMEMBER = "Remember the number 42."
RECALL = "What number did I ask you to remember?"


def environment(postgres_url: str, root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    return {
        "AGENTLOG_DATABASE_URL": postgres_url,
        "AGENTLOG_REDIS_URL": "",
        "AGENTLOG_AGENTS": AGENTS,
        "AGENTLOG_AGENT": "examples.support_agent.agent:billing",  # not the session's agent
        "AGENTLOG_WORKSPACE_DIR": str(root / "workspaces"),
        "PYTHONPATH": str(ROOT),
    }


async def turn(
    http: aiohttp.ClientSession,  # noqa: F811
    base: str,
    session_id: str,
    body: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start a run with `body`; its `run_started` and its events, once it ended."""
    async with http.post(f"{base}/v1/sessions/{session_id}/runs", json=body) as response:
        started = await response.json()
        assert response.status == 202, started
    ended = await run_ended(http, base, session_id, started["run_id"], timeout=60)
    assert ended["type"] == "run_finished", ended
    events = [e for e in await all_events(http, base, session_id) if e["seq"] > started["offset"]]
    (run_started,) = [e for e in events if e["type"] == "run_started"]
    return run_started, [e for e in events if e.get("run_id") == started["run_id"]]


def said(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "text_completed")


async def test_a_session_keeps_its_agent_when_another_instance_resumes_and_regenerates_it(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    postgres_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    first = start(servers, tmp_path / "a", environment(postgres_url, tmp_path / "a"))
    async with asyncio.timeout(180):
        async with http.post(
            f"{first.url}/v1/sessions",
            json={"id": "ada-1", "agent": "support", "metadata": {"customer": "Ada Lovelace"}},
        ) as response:
            assert response.status == 201, await response.text()
        on_first, _ = await turn(http, first.url, "ada-1", {"prompt": REMEMBER})
        assert on_first["agent_name"] == "support"
        first.stop()

        second = start(servers, tmp_path / "b", environment(postgres_url, tmp_path / "b"))
        # The other instance's default agent is `billing`: the session's own is what runs.
        on_second, events = await turn(
            http, second.url, "ada-1", {"prompt": "[scenario:system-prompt]"}
        )
        assert on_second["agent_name"] == "support"
        assert on_second["agent_fingerprint"] == on_first["agent_fingerprint"]
        assert "You are Acme's support agent. Customer: Ada Lovelace." in said(events)

        # A regenerate of the system-prompt turn, asked as RECALL, on the second instance: the
        # same agent, and its context still holds the first turn (resumed from the store).
        regenerated, events = await turn(
            http,
            second.url,
            "ada-1",
            {"prompt": RECALL, "from_message_id": on_second["run_id"]},
        )
        assert regenerated["agent_name"] == "support"
        assert regenerated["agent_fingerprint"] == on_first["agent_fingerprint"]
        assert "42" in said(events)
