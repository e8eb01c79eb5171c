"""A large fork never holds up other sessions' appends while its rows travel (issue 19: a
60,000-event fork held the one global write lock for a second, and an unrelated append waited
all that time). On every backend: while the fork's rows are staged in the database, before
it takes the append lock, an append to an unrelated session commits; ordering is proved by
positions (the unrelated event precedes the fork's whole block), not by time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.sessions.forking import fork_session
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.imported_session import ImportedSession

EVENTS = 20_000


async def test_an_unrelated_append_commits_while_a_large_fork_is_in_progress(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append("big", [SessionCreated()])
    for _ in range(0, EVENTS, 4000):
        await store.append("big", [CustomEventRecorded(name="n", data=i) for i in range(4000)])
    await store.append("other", [SessionCreated()])

    import_session = store.backend.import_session
    appended: list[int] = []

    async def append_while_staged() -> None:
        # The fork is in progress: its rows are in the database, its transaction open.
        async with asyncio.timeout(20):
            appended.extend(await store.append("other", [CustomEventRecorded(name="meanwhile")]))

    async def importing_with_an_append_meanwhile(
        session: ImportedSession, staged: Callable[[], Awaitable[None]] | None = None
    ) -> int:
        return await import_session(session, append_while_staged)

    monkeypatch.setattr(store.backend, "import_session", importing_with_an_append_meanwhile)
    fork = await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")

    assert appended == [2]
    [meanwhile] = await store.read("other", after=1)
    forked = await store.read("big-fork", after=0, limit=1)
    last = await store.read("big-fork", after=fork.copied, limit=1)
    # The unrelated append committed before the fork: its position precedes the fork's block.
    assert meanwhile.position < forked[0].position < last[0].position
    assert last[0].seq == fork.copied + 1 == EVENTS + 2
