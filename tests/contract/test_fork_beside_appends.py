"""A large fork (or import) holds the log's write lock for one batch at a time, never for the
whole session (issue 19: a 60,000-event fork held the one global write lock for a second, and
every other session's append waited all that time). On every backend, through a hook between
batches: an unrelated append commits between two batches of the fork (proved by positions,
not by time); the fork in progress is no session (reads find nothing, its id refuses appends
with 409 session_importing); a failure between batches leaves nothing and a retry succeeds;
and a fork whose process died leaves an invisible partial that the retry clears."""

from __future__ import annotations

import pytest

from agentlog.domain.errors import UnknownSession
from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.sessions import importing
from agentlog.infra.sessions.forking import fork_session
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store import import_batches
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.import_batches import BATCH_ROWS, BetweenBatches, SessionImporting
from agentlog.infra.store.imported_session import ImportedSession
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projector import Projector

EVENTS = 3 * BATCH_ROWS + 500  # four batches


async def _big_session(store: StoreBase) -> None:
    await store.append("big", [SessionCreated()])
    for start in range(0, EVENTS, 2000):
        count = min(2000, EVENTS - start)
        await store.append("big", [CustomEventRecorded(name="n", data=i) for i in range(count)])
    await store.append("other", [SessionCreated()])


def _with_hook(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch, hook: BetweenBatches
) -> list[int]:
    """Make every import of the store call `hook` between its batches; returns the rows
    written at each call."""
    calls: list[int] = []
    import_session = store.backend.import_session

    async def between(written: int) -> None:
        calls.append(written)
        await hook(written)

    async def importing_with_hook(
        session: ImportedSession, between_batches: BetweenBatches | None = None
    ) -> import_batches.Written:
        return await import_session(session, between)

    monkeypatch.setattr(store.backend, "import_session", importing_with_hook)
    return calls


async def test_an_unrelated_append_commits_between_two_batches_of_a_large_fork(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _big_session(store)
    appended: list[int] = []

    async def append_meanwhile(written: int) -> None:
        if written == BATCH_ROWS:  # after the first batch, before the second
            appended.extend(await store.append("other", [CustomEventRecorded(name="meanwhile")]))

    calls = _with_hook(store, monkeypatch, append_meanwhile)
    fork = await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")

    assert calls == [BATCH_ROWS, 2 * BATCH_ROWS, 3 * BATCH_ROWS]
    assert appended == [2]
    [meanwhile] = await store.read("other", after=1)
    first = await store.read("big-fork", after=0, limit=1)
    second_batch = await store.read("big-fork", after=BATCH_ROWS, limit=1)
    last = await store.read("big-fork", after=fork.copied, limit=1)
    # The unrelated append committed after the fork's first batch and before its second.
    assert first[0].position < meanwhile.position < second_batch[0].position < last[0].position
    assert last[0].seq == fork.copied + 1 == EVENTS + 2
    forked = await store.read("big-fork", limit=EVENTS + 10)
    assert [r.seq for r in forked] == list(range(1, EVENTS + 3))


async def test_a_fork_in_progress_is_no_session_and_its_id_refuses_appends(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _big_session(store)
    seen: list[object] = []
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)

        async def look(written: int) -> None:
            # The projector folds the batches that committed, as any append's events...
            await projector.catch_up()
            # ...yet no read shows a session.
            seen.append(await store.session("big-fork"))
            seen.append([s.session_id for s in await store.sessions()])
            seen.append(await projector.read_summary("big-fork"))
            seen.append([s.session_id for s in await projector.list_summaries()])
            with pytest.raises(UnknownSession):
                await projector.read_messages("big-fork")
            with pytest.raises(UnknownSession):
                await store.head("big-fork")
            with pytest.raises(SessionImporting) as refused:
                await store.append("big-fork", [SessionCreated()])
            assert refused.value.http_status == 409
            assert refused.value.details == {"session_id": "big-fork"}
            with pytest.raises(SessionImporting):
                await store.append("big-fork", [CustomEventRecorded(name="late")])
            with pytest.raises(SessionImporting):  # the same fork again, while this one runs
                await fork_session(store, "big", 2, "big-fork", cwd="/tmp")
            # Nor is the log broken meanwhile: a fork in progress is no orphan.
            assert (await verify_log(store)).problems == []

        calls = _with_hook(store, monkeypatch, look)
        fork = await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")

        assert len(calls) == 3
        assert seen == [None, ["big", "other"], None, ["big", "other"]] * 3
        assert await store.head("big-fork") == fork.copied + 1
        await projector.catch_up()
        summary = await projector.read_summary("big-fork")
        assert summary is not None and summary.head == fork.copied + 1
        # Once it is published, it takes appends like any session.
        assert await store.append("big-fork", [CustomEventRecorded(name="after")]) == [EVENTS + 3]


async def test_a_failure_between_batches_leaves_nothing_and_the_retry_succeeds(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _big_session(store)

    async def fail_after_two(written: int) -> None:
        if written == 2 * BATCH_ROWS:
            raise RuntimeError("injected between batches")

    _with_hook(store, monkeypatch, fail_after_two)
    with pytest.raises(RuntimeError, match="injected"):
        await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")

    assert await store.session("big-fork") is None
    assert await store.read("big-fork") == []
    monkeypatch.undo()
    fork = await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")
    assert not fork.repeated
    forked = await store.read("big-fork", limit=EVENTS + 10)
    assert [r.seq for r in forked] == list(range(1, EVENTS + 3))
    # The failed attempt's positions are gaps that the log accounts for.
    assert (await verify_log(store)).problems == []


async def test_a_failed_forks_projection_rows_go_with_its_partial_rows(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The projector folds a fork's batches as they commit; when the fork fails, the rows it
    # made go too, in every projection table (the per-message rows were once left behind).
    await _big_session(store)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)

        async def fold_then_fail(written: int) -> None:
            await projector.catch_up()
            if written == 2 * BATCH_ROWS:
                raise RuntimeError("injected between batches")

        _with_hook(store, monkeypatch, fold_then_fail)
        with pytest.raises(RuntimeError, match="injected"):
            await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")
        await projector.catch_up()

    tables = {"agentlog_ui_states", "agentlog_ui_messages", "agentlog_session_summaries"}
    assert "agentlog_ui_messages" in await store.backend.tables_holding("big")
    assert not tables & set(await store.backend.tables_holding("big-fork"))


async def test_a_dead_forks_partial_stays_invisible_and_the_retry_clears_it(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _big_session(store)

    class Died(BaseException):
        """The process ended here: nothing after it ran."""

    async def die(written: int) -> None:
        raise Died

    async def no_cleanup(*args: object) -> None:
        return None  # a dead process removes nothing

    _with_hook(store, monkeypatch, die)
    monkeypatch.setattr(import_batches, "remove_partial", no_cleanup)
    with pytest.raises(Died):
        await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")
    monkeypatch.undo()

    # Its first batch is in the log, but it is no session, and its id refuses appends.
    assert len(await store.read("big-fork")) == BATCH_ROWS
    assert await store.session("big-fork") is None
    with pytest.raises(SessionImporting):
        await store.append("big-fork", [SessionCreated()])
    # A retry while its marker is fresh could be racing a live import: refused.
    with pytest.raises(SessionImporting):
        await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")
    # Once the marker is stale, the retry takes it over, clears the partial and forks.
    monkeypatch.setattr(import_batches, "STALE_SECONDS", 0.0)
    fork = await fork_session(store, "big", EVENTS + 1, "big-fork", cwd="/tmp")
    forked = await store.read("big-fork", limit=EVENTS + 10)
    assert [r.seq for r in forked] == list(range(1, EVENTS + 3))
    assert fork.copied == EVENTS + 1
    assert (await verify_log(store)).problems == []


async def test_an_import_is_written_in_batches_too(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _big_session(store)
    lines = [line async for line in importing.export_lines(store, "big")]
    calls = _with_hook(store, monkeypatch, lambda written: _nothing())

    result = await importing.import_session(store, importing.parse_export(lines, rename_to="copy"))

    assert calls == [BATCH_ROWS, 2 * BATCH_ROWS, 3 * BATCH_ROWS]
    assert result.events == EVENTS + 1
    assert result.last_position - result.first_position == EVENTS
    assert await store.head("copy") == EVENTS + 1


async def _nothing() -> None:
    return None


async def test_a_dead_forks_partial_nobody_retries_is_cleared_by_the_sweep(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _big_session(store)

    class Died(BaseException):
        """The process ended here: nothing after it ran."""

    async def die(written: int) -> None:
        raise Died

    async def no_cleanup(*args: object, **kwargs: object) -> None:
        return None

    _with_hook(store, monkeypatch, die)
    monkeypatch.setattr(import_batches, "remove_partial", no_cleanup)
    with pytest.raises(Died):
        await fork_session(store, "big", EVENTS + 1, "forgotten", cwd="/tmp")
    monkeypatch.undo()

    assert await store.backend.clear_dead_imports() == []  # its marker is fresh: alive?
    monkeypatch.setattr(import_batches, "STALE_SECONDS", 0.0)
    assert await store.backend.clear_dead_imports() == ["forgotten"]
    assert await store.read("forgotten") == []
    assert (await verify_log(store)).problems == []
    # The id is free again.
    assert await store.append("forgotten", [SessionCreated()]) == [1]
