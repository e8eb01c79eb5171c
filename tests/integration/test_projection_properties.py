"""fold == incremental == rebuilt, for random valid logs written to a real store.

Each generated log (several sessions interleaved; parallel tool calls, errors, cancels,
crashed runs, rewinds: regenerate and edit) is appended in random chunks; the projector
catches up after each chunk with a random page size, and after some chunks it restarts (a new
projector: nothing remembered; each session read back as a window of its newest 1 to 3
messages, read whole when a page needs older ones). Then the stored rows (one per message,
written only where a page changed them) must equal the pure fold of the whole log, and so must
the rows after a full rebuild and after a per-session rebuild; every page of GET /messages,
read from the rows alone, equals the same page of the fold; the messages stored are those of
each session's current branch. SQLite for the many random examples (fast); a few on
PostgreSQL too.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from pathlib import Path

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentlog.domain.events import RecordedEvent
from agentlog.domain.rules.branches import current_branch
from agentlog.infra.store.opening import open_projection_store, open_store
from agentlog.infra.store.projector import Projector
from agentlog.projections import ui_messages
from agentlog.projections.ui_messages import ConversationState
from agentlog.projections.ui_messages.paging import page_before
from tests.conftest import POSTGRES_URL
from tests.integration.projection_helpers import folded, stored, whole_log
from tests.strategies import interleaved_logs

logs = interleaved_logs(max_sessions=3, max_runs=3, rewinds=True)
chunk_cuts = st.lists(st.integers(0, 300), max_size=7)
restarts = st.lists(st.booleans(), min_size=7, max_size=7)


async def check_pages(projector: Projector, expected: dict[str, ConversationState]) -> None:
    """Every page, newest first, as the stored rows give it, equals the fold's page."""
    for session_id, state in expected.items():
        for limit in (1, 2, 5):
            before = None
            while True:
                page, head, older = await projector.read_page(session_id, limit, before)
                want, want_older = page_before(state.messages, limit, before)
                assert (page.messages, older, head) == (tuple(want), want_older, state.last_seq)
                assert page.open_run_id == state.open_run_id
                if older is None:
                    break
                before = older


async def check_fold_equals_incremental_equals_rebuilt(
    database_url: str,
    log: list[RecordedEvent],
    cuts: list[int],
    page_size: int,
    restart_after: list[bool] | None = None,
) -> None:
    async with open_store(database_url) as store, open_projection_store(store) as projections:

        def started() -> Projector:
            return Projector(
                store,
                projections,
                page_size=page_size,
                rebuild_page_size=page_size,
                newest_messages=1 + page_size % 3,
            )

        projector = started()
        bounds = sorted({0, len(log), *(c % (len(log) + 1) for c in cuts)})
        restart_after = restart_after or []
        for chunk, (start, end) in enumerate(itertools.pairwise(bounds)):
            # One append per run of consecutive events of one session, in the log's order.
            for session_id, batch in itertools.groupby(log[start:end], lambda r: r.session_id):
                await store.append(session_id, [r.event for r in batch])
            await projector.catch_up()
            if chunk < len(restart_after) and restart_after[chunk]:
                projector = started()  # nothing remembered: the next page reads the rows

        expected = await folded(store)
        assert len(expected[0]) == len({r.session_id for r in log})
        # What is stored shows the current branch of each session (the pure fold's rule).
        for session_id, state in expected[0].items():
            own = [r for r in await whole_log(store) if r.session_id == session_id]
            branch = ui_messages.fold(current_branch(own))
            assert ui_messages.to_ui_messages(state, run_active=False) == (
                ui_messages.to_ui_messages(branch, run_active=False)
            )
        assert await stored(projections) == expected, "incremental"
        for session_id, state in expected[0].items():
            assert await projector.read_messages(session_id) == (state, state.last_seq)
        await check_pages(projector, expected[0])

        await projector.rebuild()
        assert await stored(projections) == expected, "rebuilt"
        await check_pages(projector, expected[0])

        some_session = log[-1].session_id
        await projector.rebuild(some_session)
        assert await stored(projections) == expected, "rebuilt one session"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs, cuts=chunk_cuts, page_size=st.integers(1, 9), restart_after=restarts)
async def test_on_sqlite_fold_equals_incremental_equals_rebuilt(
    log: list[RecordedEvent], cuts: list[int], page_size: int, restart_after: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'agentlog.db'}"
        await check_fold_equals_incremental_equals_rebuilt(url, log, cuts, page_size, restart_after)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(log=logs, cuts=chunk_cuts, page_size=st.integers(1, 9), restart_after=restarts)
async def test_on_postgres_fold_equals_incremental_equals_rebuilt(
    postgres_url: str,
    log: list[RecordedEvent],
    cuts: list[int],
    page_size: int,
    restart_after: list[bool],
) -> None:
    # postgres_url skips the test when PostgreSQL is missing; each example gets its own schema.
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        await check_fold_equals_incremental_equals_rebuilt(
            f"{POSTGRES_URL}?schema={schema}", log, cuts, page_size, restart_after
        )
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
