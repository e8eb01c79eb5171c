"""Rebuilds while the service runs: built aside and swapped, never half-visible, nothing lost."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import msgspec
import pytest

from agentlog.domain.errors import UnknownSession
from agentlog.domain.events import ConversationRewound, CustomEventRecorded, SessionCreated
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projection_store import ProjectionStore
from agentlog.infra.store.projector import Projector
from agentlog.projections import ui_messages
from tests.conftest import StoreOpener
from tests.integration.projection_helpers import a_run, folded, seed, stored

both_databases = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


class MonotonicReader:
    """Reads the live rows over and over; remembers every time one went backwards or vanished."""

    def __init__(self, projections: ProjectionStore) -> None:
        self.projections = projections
        self.heads: dict[str, int] = {}
        self.state_seqs: dict[str, int] = {}
        self.reads = 0
        self.violations: list[str] = []

    async def read_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            rows = await self.projections.read_summaries(None, 100_000)
            heads = {s.session_id: s.head for s in rows}
            for session_id, head in self.heads.items():
                if session_id not in heads:
                    self.violations.append(f"{session_id} vanished")
                elif heads[session_id] < head:
                    self.violations.append(f"{session_id} went back to {heads[session_id]}")
            self.heads = heads
            for session_id in random.sample(sorted(heads), min(3, len(heads))):
                state = await self.projections.read_state(session_id)
                seq = -1 if state is None else state.last_seq
                if seq < self.state_seqs.get(session_id, 0):
                    self.violations.append(f"state of {session_id} went back to {seq}")
                self.state_seqs[session_id] = seq
            self.reads += 1
            await asyncio.sleep(0)


async def append_until(
    store: StoreBase, stop: asyncio.Event, sessions: int, progress: list[int] | None = None
) -> int:
    """Appends to existing and new sessions until stopped; returns how many appends
    (`progress[0]` counts them as they go)."""
    rng = random.Random(7)
    appended = 0
    while not stop.is_set():
        if progress is not None:
            progress[0] = appended
        if rng.random() < 0.1:
            await store.append(f"new{appended:04d}", [SessionCreated(title="new")])
        elif rng.random() < 0.5:
            await store.append(f"s{rng.randrange(sessions):03d}", a_run(f"w{appended}", 1, 2))
        else:
            await store.append(
                f"s{rng.randrange(sessions):03d}", [CustomEventRecorded(name="n", data=appended)]
            )
        appended += 1
        await asyncio.sleep(0.001)
    return appended


@both_databases
async def test_a_rebuild_while_a_writer_appends_ends_identical_to_a_fresh_fold(
    store: StoreBase,
) -> None:
    await seed(store, sessions_count=20, runs=2)
    async with open_projection_store(store) as projections:
        # Small pages and a small cache, so the rebuild takes many steps and spills to its
        # new generation's rows while the writer, the projector and the reader run.
        projector = Projector(
            store,
            projections,
            page_size=25,
            rebuild_page_size=30,
            cache_bytes=8 * 4096,
            settle_seconds=0,
            recheck_seconds=0.05,
        )
        await projector.catch_up()
        reader = MonotonicReader(projections)
        stop_writer, stop_others = asyncio.Event(), asyncio.Event()
        progress = [0]
        writer = asyncio.create_task(append_until(store, stop_writer, 20, progress))
        running = asyncio.create_task(projector.run(stop_others))
        reading = asyncio.create_task(reader.read_until(stop_others))
        await asyncio.sleep(0.05)

        # Rebuilds until the writer appended a few times while they ran: two, or more on a
        # machine so loaded that a rebuild can finish between two of the writer's appends.
        before = progress[0]
        results = [await projector.rebuild(), await projector.rebuild()]
        while progress[0] - before < 3 and len(results) < 20:
            results.append(await projector.rebuild())
        during = progress[0] - before  # appends the rebuilds had to take in their stride

        await asyncio.sleep(0.05)
        stop_writer.set()
        appended = await writer
        await projector.catch_up()
        stop_others.set()
        await asyncio.gather(running, reading)

        # Not a fixed count (a loaded machine appends fewer): the writer did write while the
        # rebuilds ran, and the reader read throughout.
        assert during > 0 and appended >= during and reader.reads > 5
        assert reader.violations == []
        assert all(not r.superseded and r.sessions >= 20 for r in results)
        assert await stored(projections) == await folded(store)
        checkpoint = await projections.checkpoint()
        # Only the live generation is left.
        for older in range(1, checkpoint.generation):
            assert await projections.load_generation(older, list(reader.heads)) == ({}, {})


@both_databases
async def test_two_rebuilds_at_once_in_two_processes_leave_one_complete_generation(
    open_test_store: StoreOpener,
) -> None:
    async with (
        open_test_store() as first,
        open_test_store() as second,
        open_projection_store(first) as p1,
        open_projection_store(second) as p2,
    ):
        await seed(first, sessions_count=10)
        one = Projector(first, p1, rebuild_page_size=7)
        two = Projector(second, p2, rebuild_page_size=11)
        results = await asyncio.gather(one.rebuild(), two.rebuild(), one.catch_up())
        assert [r.superseded for r in results[:2]].count(False) >= 1
        expected = await folded(first)
        assert await stored(p1) == expected
        live = (await p1.checkpoint()).generation
        for other in range(1, live + 3):
            if other != live:
                assert await p1.load_generation(other, list(expected[0])) == ({}, {})


async def test_a_failed_rebuild_leaves_the_live_rows_and_no_debris(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(store, sessions_count=5)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections, rebuild_page_size=10, cache_bytes=8)
        await projector.catch_up()
        before = await stored(projections), await projections.checkpoint()
        write = projections.write_generation
        calls = 0

        async def fail_on_third_write(*args: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("disk full")
            await write(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(projections, "write_generation", fail_on_third_write)
        with pytest.raises(RuntimeError, match="disk full"):
            await projector.rebuild()
        assert (await stored(projections), await projections.checkpoint()) == before
        abandoned = before[1].generation + 1
        assert await projections.load_generation(abandoned, list(before[0][0])) == ({}, {})


async def test_rebuilding_one_session_replaces_its_rows_only(store: StoreBase) -> None:
    await seed(store, sessions_count=3)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        states, summaries = await folded(store)
        # Damage two sessions' rows, as a projection bug would.
        for session_id in ("s000", "s001"):
            async with projections.claim() as claim:
                damaged = ui_messages.fold([])
                wrong = summaries[session_id]
                assert await claim.replace(session_id, damaged, wrong)

        result = await projector.rebuild("s001")
        assert (result.sessions, result.session_id) == (1, "s001")
        assert result.events == summaries["s001"].head
        rows = await stored(projections)
        assert rows[0]["s001"] == states["s001"]
        assert rows[0]["s000"] == ui_messages.EMPTY  # left alone
        assert rows[0]["s002"] == states["s002"]
        with pytest.raises(UnknownSession):
            await projector.rebuild("nobody")


async def test_a_rebuild_reports_progress_to_the_end(store: StoreBase) -> None:
    await seed(store, sessions_count=4)
    async with open_projection_store(store) as projections:
        seen: list[tuple[int, int]] = []
        result = await Projector(store, projections, rebuild_page_size=9).rebuild(
            progress=lambda done, total: seen.append((done, total))
        )
        total = await store.last_position()
        assert seen[-1] == (total, total) == (result.events, result.position)
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)


async def test_a_rebuild_of_an_empty_log_makes_an_empty_generation_live(
    open_test_store: StoreOpener,
) -> None:
    async with open_test_store() as store, open_projection_store(store) as projections:
        result = await Projector(store, projections).rebuild()
        assert (result.events, result.sessions, result.position) == (0, 0, 0)
        assert (await projections.checkpoint()).generation == 2
        assert await stored(projections) == ({}, {})


def _as_stored_before_rewinds(state: ui_messages.ConversationState) -> Any:
    """The state as a projector without rewinds stored it: no message kept its seq."""
    return msgspec.structs.replace(
        state, messages=tuple(msgspec.structs.replace(m, seq=0) for m in state.messages)
    )


@both_databases
async def test_rows_stored_before_rewinds_are_folded_afresh_at_their_first_rewind(
    store: StoreBase,
) -> None:
    await store.append("old", [SessionCreated()])
    await store.append("old", a_run("first", 1, 1))
    [second] = await store.append("old", a_run("second", 1, 1)[:1])
    await store.append("old", a_run("second", 1, 1)[1:])
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        state, summary = await projections.read_state("old"), await projections.read_summary("old")
        assert state is not None and summary is not None
        async with projections.claim() as claim:
            legacy = msgspec.structs.replace(summary, run_marks=())
            assert await claim.replace("old", _as_stored_before_rewinds(state), legacy)

        await store.append(
            "old",
            [
                ConversationRewound(to_seq=second - 1, agent_session="x", trigger="regenerate"),
                *a_run("third", 1, 1),
            ],
        )
        # A read folds past the stored rows; the stored state cannot be rewound: afresh.
        fresh, _head = await projector.read_messages("old")
        assert fresh == (await folded(store))[0]["old"]
        assert [m.id for m in fresh.messages] == ["first:user", "first", "third:user", "third"]

        await projector.catch_up()
        assert await stored(projections) == await folded(store)
        row = await projections.read_summary("old")
        assert row is not None and (row.runs, row.tool_calls) == (2, 2)
