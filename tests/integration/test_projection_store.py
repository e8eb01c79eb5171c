"""The incremental projector on every backend (SQLite, PostgreSQL, PostgreSQL with Redis
wake-ups): catch-up resumes after a restart, and folding the same events twice changes
nothing (the projection store's own contract: tests/contract/test_projection_store.py)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from agentlog.domain.errors import UnknownSession
from agentlog.domain.events import (
    ConversationRewound,
    CustomEventRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    ToolCallStarted,
)
from agentlog.infra.postgres.event_store import PostgresEventStore
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projection_store import StateWrite, encode_state, state_writes
from agentlog.infra.store.projector import Projector
from agentlog.projections import sessions, ui_messages
from agentlog.projections.ui_messages.paging import UnknownCursor
from tests.conftest import StoreOpener
from tests.integration.projection_helpers import a_run, folded, seed, stored, whole_log


async def test_the_projector_folds_the_log_into_rows_equal_to_the_pure_fold(
    store: StoreBase,
) -> None:
    await seed(store, sessions_count=5, runs=2)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections, page_size=7)
        assert await projector.catch_up() == len(await whole_log(store))
        assert await stored(projections) == await folded(store)
        assert await projector.catch_up() == 0


async def test_catches_up_after_a_restart_from_its_checkpoint(
    open_test_store: StoreOpener,
) -> None:
    async with open_test_store() as store, open_projection_store(store) as projections:
        await seed(store, sessions_count=3)
        first = await Projector(store, projections).catch_up()
        await store.append("s000", a_run("late"))
        await store.append("new", [SessionCreated()])
    # Another process, started later, on the same database.
    async with open_test_store() as store, open_projection_store(store) as projections:
        assert (await projections.checkpoint()).position == first
        assert await Projector(store, projections).catch_up() == len(a_run("late")) + 1
        assert await stored(projections) == await folded(store)


async def test_folding_a_page_twice_changes_nothing(store: StoreBase) -> None:
    await seed(store, sessions_count=3)
    events = await whole_log(store)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        assert await projector.apply(events[:20])
        assert await projector.apply(events[:40])
        before = await stored(projections), await projections.checkpoint()
        assert await projector.apply(events[:40])  # again: already folded
        assert await projector.apply(events[10:30])  # a part of it, again
        assert (await stored(projections), await projections.checkpoint()) == before
        await projector.catch_up()
        assert await stored(projections) == await folded(store)


async def test_projectors_of_two_servers_share_the_work_without_conflict(
    open_test_store: StoreOpener,
) -> None:
    async with (
        open_test_store() as one,
        open_test_store() as two,
        open_projection_store(one) as p1,
        open_projection_store(two) as p2,
    ):
        await seed(one, sessions_count=6, runs=2)
        a, b = Projector(one, p1, page_size=5), Projector(two, p2, page_size=5)
        counts = await asyncio.gather(a.catch_up(), b.catch_up(), a.catch_up(), b.catch_up())
        # Every event was folded once, by one of them.
        assert sum(counts) == len(await whole_log(one))
        assert await stored(p1) == await folded(one)


async def test_reads_fold_the_log_beyond_the_rows(store: StoreBase) -> None:
    await seed(store, sessions_count=2)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        await store.append("s001", [RunStarted(run_id="live", prompt="p")])
        await store.append(
            "s001", [ToolCallStarted(run_id="live", tool_call_id="t", tool_name="X")]
        )
        await store.append("s002", [SessionCreated(title="not projected yet")])
        states, summaries = await folded(store)

        assert await projector.read_messages("s001") == (states["s001"], summaries["s001"].head)
        assert await projector.read_messages("s002") == (states["s002"], 1)
        assert await projector.read_summary("s001") == summaries["s001"]
        assert await projector.read_summary("s002") == summaries["s002"]
        assert await projector.read_summary("nobody") is None
        with pytest.raises(UnknownSession):
            await projector.read_messages("nobody")
        listed = list(summaries.values())
        assert await projector.list_summaries() == listed
        assert await projector.list_summaries(limit=2) == listed[:2]
        assert await projector.list_summaries(after="s000", limit=1) == listed[1:2]
        assert await projector.list_summaries(after="s001") == listed[2:]


async def test_a_projector_never_folds_on_from_rows_another_writer_replaced(
    store: StoreBase,
) -> None:
    await seed(store, sessions_count=2)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        # Another writer replaces a row (as a per-session rebuild would) without new events.
        async with projections.claim() as claim:
            summary = await projections.read_summary("s000")
            assert summary is not None
            assert await claim.replace("s000", ui_messages.EMPTY, summary)
        await store.append("s000", [CustomEventRecorded(name="after")])
        await projector.catch_up()
        tail = (await store.read("s000"))[-1:]
        assert await projections.read_state("s000") == ui_messages.fold(tail)


async def test_a_summaries_table_from_before_usage_gains_its_columns(store: StoreBase) -> None:
    await store.append(
        "a",
        [
            SessionCreated(),
            RunStarted(run_id="r1", prompt="x", agent="claude"),
            RunFinished(run_id="r1", total_cost_usd=0.5, usage={"input_tokens": 9}),
        ],
    )
    events = await whole_log(store)
    async with open_projection_store(store) as projections:
        pass
    for column in ("usage", "active_run_agent"):  # the table as an older agentlog left it
        await _sql(store, f"ALTER TABLE agentlog_session_summaries DROP COLUMN {column}")
    async with open_projection_store(store) as projections:
        summaries = sessions.fold(events)
        assert summaries["a"].usage.cost_usd == 0.5
        async with projections.claim() as claim:
            assert await claim.save({}, {}, summaries, events[-1].position)
        assert await projections.read_summary("a") == summaries["a"]


async def _sql(store: StoreBase, statement: str) -> None:
    if isinstance(store, PostgresEventStore):
        async with store.pool.acquire() as conn:
            await conn.execute(f'SET search_path TO "{store.schema}"')
            await conn.execute(statement)
            await conn.execute("RESET search_path")
    else:
        assert isinstance(store, SQLiteEventStore)
        await store.threads.on_writer(lambda conn: conn.execute(statement))


async def test_the_rows_the_projector_remembers_are_bounded_in_bytes(store: StoreBase) -> None:
    # Four sessions of ~60 KB each; the projector may remember 100 KB (a quarter of 400 KB).
    for name in ("big0", "big1", "big2", "big3"):
        await store.append(name, [SessionCreated(title=name)])
        await store.append(name, [CustomEventRecorded(name="blob", data={"x": "y" * 20_000})] * 3)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections, cache_bytes=400_000)
        await projector.catch_up()
        cache = projector._rows_cache
        assert 0 < cache.bytes <= 100_000
        assert 0 < len(cache) < 4 and "big3" in cache  # the newest stayed
        # Still exact: what was forgotten is read back from the rows.
        await store.append("big0", [CustomEventRecorded(name="late", data={})])
        await projector.catch_up()
        assert await stored(projections) == await folded(store)


async def test_a_page_writes_only_the_messages_it_changed(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long conversation: 40 messages of their own, then an open run.
    await store.append("s", [SessionCreated()])
    await store.append("s", [CustomEventRecorded(name="note", data=i) for i in range(40)])
    await store.append("s", [RunStarted(run_id="r", prompt="go")])
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        module = sys.modules[type(projections).__module__]
        written: list[list[int]] = []

        def recording(states: Any, changes: Any, hidden: Any = None) -> list[StateWrite]:
            writes: list[StateWrite] = state_writes(states, changes, hidden)
            written.extend([p for p, _id, _m in w.messages] for w in writes)
            return writes

        monkeypatch.setattr(module, "state_writes", recording)
        await store.append("s", [ToolCallStarted(run_id="r", tool_call_id="t", tool_name="Bash")])
        await projector.catch_up()
        assert written == [[41]]  # the run's message only (the prompt is 40)
        await store.append("s", [RunFinished(run_id="r", result="ok")])
        await store.append("s", [CustomEventRecorded(name="after")])
        await projector.catch_up()
        assert written[1:] == [[41, 42]]  # the run's end, and one new message
        assert await stored(projections) == await folded(store)


async def test_whole_state_rows_of_an_older_agentlog_are_split_into_message_rows(
    store: StoreBase,
) -> None:
    await seed(store, sessions_count=3, runs=2)
    async with open_projection_store(store) as projections:
        await Projector(store, projections).catch_up()
    expected = await folded(store)
    # The layout before messages had rows: the whole state in agentlog_ui_states.state.
    await _sql(store, "DROP TABLE agentlog_ui_messages")
    await _sql(store, "ALTER TABLE agentlog_ui_states DROP COLUMN message_count")
    for session_id, state in expected[0].items():
        whole = encode_state(state).hex()
        literal = (
            f"decode('{whole}', 'hex')"
            if isinstance(store, PostgresEventStore)
            else (f"X'{whole}'")
        )
        await _sql(
            store,
            f"UPDATE agentlog_ui_states SET state = {literal} WHERE session_id = '{session_id}'",
        )
    async with open_projection_store(store) as projections:
        assert await stored(projections) == expected
        projector = Projector(store, projections)
        page, _head, older = await projector.read_page("s001", 2)
        assert page.messages == expected[0]["s001"].messages[-2:] and older is not None
        await store.append("s001", a_run("late"))
        await projector.catch_up()
        assert await stored(projections) == await folded(store)
    async with open_projection_store(store) as projections:
        assert await stored(projections) == await folded(store)  # split once, left alone


async def test_a_page_read_while_the_projector_is_behind_folds_the_log_past_the_rows(
    store: StoreBase,
) -> None:
    await store.append("s", [SessionCreated(), *a_run("r1")])
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        # Not caught up: a second run, only in the log.
        await store.append("s", [RunStarted(run_id="r2", prompt="again")])
        await store.append("s", [RunFinished(run_id="r2", result="ok")])
        expected = (await folded(store))[0]["s"]
        page, head, older = await projector.read_page("s", 1)
        assert page.messages == expected.messages[-1:] and head == expected.last_seq
        assert older == expected.messages[-1].id
        page, head, older = await projector.read_page("s", 5, before="r2:user")
        assert page.messages == expected.messages[:2] and older is None
        with pytest.raises(UnknownCursor):
            await projector.read_page("s", 5, before="nothing")
        with pytest.raises(UnknownSession):
            await projector.read_page("nobody", 5)


async def test_a_session_not_remembered_is_read_back_as_its_newest_messages(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append("s", [SessionCreated()])
    await store.append("s", [CustomEventRecorded(name="note", data=i) for i in range(20)])
    await store.append("s", a_run("r1")[:4])  # a run still open: its message is the last
    async with open_projection_store(store) as projections:
        await Projector(store, projections).catch_up()
        whole_reads: list[list[str]] = []
        claim_type = type(await _a_claim(projections))
        load = claim_type.load

        async def counted(self: Any, session_ids: Any) -> Any:
            whole_reads.append(list(session_ids))
            return await load(self, session_ids)

        monkeypatch.setattr(claim_type, "load", counted)
        # A restarted projector: it remembers nothing and reads the newest two messages.
        projector = Projector(store, projections, newest_messages=2)
        await store.append("s", a_run("r1")[4:])  # the run goes on and ends in its message
        await store.append("s", [CustomEventRecorded(name="after")])
        await projector.catch_up()
        assert whole_reads == []
        assert await stored(projections) == await folded(store)
        # A new run (the run index says its start is its first) needs no older message.
        await store.append("s", a_run("r2"))
        await Projector(store, projections, newest_messages=2).catch_up()
        assert whole_reads == []
        assert await stored(projections) == await folded(store)
        # A rewind may take any message away: read whole, once.
        head = (await whole_log(store))[-1].seq
        await store.append(
            "s",
            [
                ConversationRewound(to_seq=head - len(a_run("r2")), agent_session="b2"),
                *a_run("r3"),
            ],
        )
        await Projector(store, projections, newest_messages=2).catch_up()
        assert whole_reads == [["s"]]
        assert await stored(projections) == await folded(store)


async def _a_claim(projections: Any) -> Any:
    async with projections.claim() as claim:
        return claim


async def test_messages_are_found_by_id_from_the_rows_while_they_are_at_the_head(
    store: StoreBase,
) -> None:
    await store.append("s", [SessionCreated(), *a_run("r1"), CustomEventRecorded(name="n")])
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        assert await projector.read_named("s", ["r1"]) is None  # no rows yet: cannot tell
        await projector.catch_up()
        found = await projector.read_named("s", ["r1", "r1:user", "nothing"])
        expected = (await folded(store))[0]["s"].messages
        assert found == [m for m in expected if m.id in ("r1", "r1:user")]
        assert await projector.read_named("s", ["nothing"]) == []
        # Behind the log: what the log past the rows holds decides.
        await store.append("s", [CustomEventRecorded(name="later"), *a_run("r2")])
        assert await projector.read_named("s", ["r1"]) == [m for m in found if m.id == "r1"]
        assert await projector.read_named("s", ["nothing"]) == []
        assert await projector.read_named("s", ["r2"]) is None  # a run start names it
        head = (await whole_log(store))[-1].seq
        rewind = ConversationRewound(to_seq=head, agent_session="b")
        await store.append("s", [rewind, *a_run("r3")])
        assert await projector.read_named("s", ["nothing"]) is None  # a rewind may drop any
        await projector.catch_up()
        assert await projector.read_named("s", ["r2"]) == [
            m for m in (await folded(store))[0]["s"].messages if m.id == "r2"
        ]
