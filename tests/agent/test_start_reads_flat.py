"""A run's start reads the same at 10 and at 1,000 earlier runs: the same store calls, the same
events read (issue 21, "run start within 1.5x from 1k to 100k events"). A read of every run,
of the whole run index or of the whole log would show here as more calls or more events in the
longer session, without timing anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import (
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    TextCompleted,
)
from agentlog.domain.ports.agent_runs import StartedRun
from agentlog.domain.ports.event_store import RunRecord
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.sqlite.backend import SQLiteBackend
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.transport.app import create_app
from agentlog.transport.keys import AGENT_RUNS
from agentlog.transport.settings import Settings

pytestmark = pytest.mark.slow

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
PROMPT = "[scenario:text] hello"


class CountingStore(SQLiteEventStore):
    """The real SQLite store, noting each per-session read the watched task makes: which
    read, and how many events (or run records) it returned."""

    watched: asyncio.Task[Any] | None = None
    reads: list[tuple[str, int]]

    def _note(self, name: str, count: int) -> None:
        if self.watched is not None and asyncio.current_task() is self.watched:
            self.reads.append((name, count))

    async def read(self, session_id: str, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        page = await super().read(session_id, after, limit)
        self._note("read", len(page))
        return page

    async def read_session(self, session_id: str, after: int = 0) -> list[RecordedEvent]:
        events = await super().read_session(session_id, after)
        self._note("read_session", len(events))
        return events

    async def run(self, session_id: str, run_id: str) -> RunRecord | None:
        found = await super().run(session_id, run_id)
        self._note("run", int(found is not None))
        return found

    async def current_run(self, session_id: str) -> RunRecord | None:
        found = await super().current_run(session_id)
        self._note("current_run", int(found is not None))
        return found

    async def head(self, session_id: str) -> int:
        value = await super().head(session_id)
        self._note("head", 1)
        return value


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    counting = CountingStore(tmp_path / "agentlog.db")
    counting.reads = []
    SQLiteBackend(counting)  # the adapters beside the log, as opening a store builds them
    opened = await counting.open()
    for session_id, runs in (("ten", 10), ("thousand", 1_000)):
        await opened.append(session_id, [SessionCreated()])
        for start in range(0, runs, 200):
            batch = []
            for run in range(start, min(runs, start + 200)):
                run_id = f"old{run}"
                batch += [
                    RunStarted(run_id=run_id, prompt=f"question {run}"),
                    TextCompleted(run_id=run_id, message_id=f"m{run}", text="an answer"),
                    RunFinished(run_id=run_id, result="an answer"),
                ]
            await opened.append(session_id, batch)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_start_reads_the_same_at_ten_and_a_thousand_runs(
    store: CountingStore, aiohttp_client: Client, tmp_path: Path
) -> None:
    agent = AgentConfig(workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes")
    client = await aiohttp_client(create_app(Settings(agent=agent), store=store))
    runs = client.server.app[AGENT_RUNS]

    async def reads_of_a_start(session_id: str) -> list[tuple[str, int]]:
        # Twice: the first run of each session converts its log to a transcript (in the
        # run's own task, not the start); the second start is the steady state measured.
        for _attempt in range(2):
            store.reads, store.watched = [], asyncio.current_task()
            started = await runs.send(session_id, PROMPT)
            store.watched = None
            assert isinstance(started, StartedRun), started  # started, not queued
            await ended(store, runs, session_id, started.run_id)
        return store.reads

    ten, thousand = await reads_of_a_start("ten"), await reads_of_a_start("thousand")
    assert ten == thousand
    # And no read in it returned more than a run's worth of events.
    assert max(count for _, count in thousand) < 50


async def ended(store: CountingStore, runs: Any, session_id: str, run_id: str) -> None:
    """Until the run ended and let go of the session's lease (the last thing it does), so the
    next start finds the session idle."""
    async with asyncio.timeout(60):
        while True:
            current = await store.current_run(session_id)
            ended_here = current is not None and current.run_id == run_id and current.ended_seq
            if ended_here and await runs.active_run(session_id) is None:
                return
            await asyncio.sleep(0.05)
