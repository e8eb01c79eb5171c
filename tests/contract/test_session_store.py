"""`LogSessionStore` keeps the SDK's `SessionStore` contract on every backend: the SDK's own
conformance harness (all 14 contracts, every optional method), plus what agentlog adds on top:
uuid idempotency under concurrent appends, and transcripts bound to their agentlog session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
from claude_agent_sdk import get_session_messages_from_store
from claude_agent_sdk.testing import run_session_store_conformance
from claude_agent_sdk.types import SessionStore

from agentlog.domain.events import SessionCreated
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from tests.contract.conftest import NewDatabaseUrl


@pytest.fixture
async def fresh_store(
    new_database_url: NewDatabaseUrl, backend_redis_url: str | None
) -> AsyncIterator[Callable[[], object]]:
    """A factory of stores, each on a database of its own (the harness wants isolation per
    contract), of the backend's kind, every one removed after the test."""
    async with AsyncExitStack() as stack:

        async def make() -> LogSessionStore:
            url = await new_database_url()
            store = await stack.enter_async_context(open_store(url, redis_url=backend_redis_url))
            return LogSessionStore(store)

        yield make


async def test_passes_the_sdks_conformance_harness_with_every_optional_method(
    fresh_store: Callable[[], object],
) -> None:
    probe = await fresh_store()
    for method in ("list_sessions", "list_session_summaries", "delete", "list_subkeys"):
        assert getattr(type(probe), method) is not getattr(SessionStore, method), method
    await run_session_store_conformance(fresh_store)


def _entry(n: int, **extra: object) -> dict[str, object]:
    return {"type": "user", "uuid": f"u-{n}", "n": n, **extra}


KEY = {"project_key": "p", "session_id": "11111111-1111-4111-8111-111111111111"}


async def test_a_retried_batch_is_stored_once_and_concurrent_appends_lose_nothing(
    store: StoreBase,
) -> None:
    sessions = LogSessionStore(store)
    batches = [[_entry(b * 10 + i) for i in range(10)] for b in range(8)]
    # Every batch sent twice, all at once: the SDK retries a batch whose append timed out.
    await asyncio.gather(*(sessions.append(KEY, batch) for batch in batches + batches))
    loaded = await sessions.load(KEY)
    assert loaded is not None
    assert sorted(e["n"] for e in loaded) == list(range(80))  # none lost, none twice
    for batch in batches:  # each batch kept its own order
        positions = [loaded.index(e) for e in batch]
        assert positions == sorted(positions)
    # Entries without a uuid (titles, tags) are appended every time.
    await sessions.append(KEY, [{"type": "custom-title", "customTitle": "t"}] * 2)
    again = await sessions.load(KEY)
    assert again is not None and len(again) == 82
    assert again[-2:] == [{"type": "custom-title", "customTitle": "t"}] * 2


async def test_entries_round_trip_whole(store: StoreBase) -> None:
    sessions = LogSessionStore(store)
    odd = _entry(1, text="héllo ✓ \u0000 \ud800", nested={"a": [1, 2.5, None, True]}, big=2**70)
    await sessions.append(KEY, [odd])
    assert await sessions.load(KEY) == [odd]


async def test_transcripts_belong_to_the_agentlog_session_that_wrote_them(
    store: StoreBase,
) -> None:
    for sid in ("chat-a", "chat-b"):
        await store.append(sid, [SessionCreated()])
    shared = LogSessionStore(store)
    a, b = shared.for_session("chat-a"), shared.for_session("chat-b")
    main_a = {"project_key": RUNNER_PROJECT_KEY, "session_id": "aaaa"}
    await a.append(main_a, [_entry(1)])
    await a.append({**main_a, "subpath": "subagents/agent-1"}, [_entry(2)])
    await b.append({"project_key": RUNNER_PROJECT_KEY, "session_id": "bbbb"}, [_entry(3)])
    # An unbound writer (an SDK helper) adds to a transcript without moving it.
    await shared.append(main_a, [_entry(4)])

    transcripts = await a.transcripts_of("chat-a")
    found = {(t.key.agent_session_id, t.key.subpath): t.entries for t in transcripts}
    assert found == {
        ("aaaa", ""): [_entry(1), _entry(4)],
        ("aaaa", "subagents/agent-1"): [_entry(2)],
    }
    assert await shared.delete_session("chat-a") == 3
    assert await shared.transcripts_of("chat-a") == []
    assert await shared.load(main_a) is None
    assert await shared.load({"project_key": RUNNER_PROJECT_KEY, "session_id": "bbbb"}) == [
        _entry(3)
    ]


async def test_a_bound_store_files_every_project_key_under_the_runners_one(
    store: StoreBase,
) -> None:
    """The SDK derives the project key from the CLI's cwd, which differs between instances (a
    workspace root of their own): a bound store reads and writes one transcript whatever key
    it is handed, so a run resumes on any instance. An unbound store keeps the keys given."""
    await store.append("chat", [SessionCreated()])
    here = LogSessionStore(store).for_session("chat")
    there = LogSessionStore(store).for_session("chat")
    agent = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
    await here.append({"project_key": "-srv-a-workspaces-chat", "session_id": agent}, [_entry(1)])
    sub = {"project_key": "-srv-a-x", "session_id": agent, "subpath": "subagents/agent-1"}
    await here.append(sub, [_entry(2)])  # type: ignore[arg-type]

    elsewhere = {"project_key": "-srv-b-workspaces-chat", "session_id": agent}
    assert await there.load(elsewhere) == [_entry(1)]  # type: ignore[arg-type]
    assert await there.list_subkeys(elsewhere) == ["subagents/agent-1"]  # type: ignore[arg-type]
    assert [s["session_id"] for s in await there.list_sessions("anything")] == [agent]
    unbound = LogSessionStore(store)
    assert await unbound.load({"project_key": RUNNER_PROJECT_KEY, "session_id": agent}) == [
        _entry(1)
    ]
    assert await unbound.load(elsewhere) is None  # type: ignore[arg-type]


async def test_the_sdks_own_readers_read_what_it_wrote(store: StoreBase) -> None:
    sessions = LogSessionStore(store)
    sid = str(uuid.uuid4())
    user = {
        "type": "user",
        "uuid": str(uuid.uuid4()),
        "parentUuid": None,
        "sessionId": sid,
        "timestamp": "2026-12-01T00:00:00.000Z",
        "isSidechain": False,
        "userType": "external",
        "cwd": "/w",
        "message": {"role": "user", "content": "hello"},
    }
    answer = {
        **user,
        "type": "assistant",
        "uuid": str(uuid.uuid4()),
        "parentUuid": user["uuid"],
        "message": {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
    }
    await sessions.append({"project_key": "p", "session_id": sid}, [user, answer])
    messages = await get_session_messages_from_store(sessions, sid, directory="/w")
    assert [m.type for m in messages] == []  # project key of "/w" is "-w", not "p"
    await sessions.append({"project_key": "-w", "session_id": sid}, [user, answer])
    messages = await get_session_messages_from_store(sessions, sid, directory="/w")
    assert [(m.type, m.uuid) for m in messages] == [
        ("user", user["uuid"]),
        ("assistant", answer["uuid"]),
    ]
