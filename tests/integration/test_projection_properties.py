"""fold == incremental == rebuilt, for random valid logs written to a real store.

Each generated log (several sessions interleaved; parallel tool calls, errors, cancels,
crashed runs, rewinds: regenerate and edit) is appended in random chunks; the projector
catches up after each chunk with a random page size. Then the stored rows must equal the pure
fold of the whole log, and so must the rows after a full rebuild and after a per-session
rebuild; the messages stored are those of each session's current branch. SQLite for the many
random examples (fast); a few on PostgreSQL too.
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
from tests.conftest import POSTGRES_URL
from tests.integration.projection_helpers import folded, stored, whole_log
from tests.strategies import interleaved_logs

logs = interleaved_logs(max_sessions=3, max_runs=3, rewinds=True)
chunk_cuts = st.lists(st.integers(0, 300), max_size=6)


async def check_fold_equals_incremental_equals_rebuilt(
    database_url: str, log: list[RecordedEvent], cuts: list[int], page_size: int
) -> None:
    async with open_store(database_url) as store, open_projection_store(store) as projections:
        projector = Projector(store, projections, page_size=page_size, rebuild_page_size=page_size)
        bounds = sorted({0, len(log), *(c for c in cuts if c < len(log))})
        for start, end in itertools.pairwise(bounds):
            # One append per run of consecutive events of one session, in the log's order.
            for session_id, batch in itertools.groupby(log[start:end], lambda r: r.session_id):
                await store.append(session_id, [r.event for r in batch])
            await projector.catch_up()

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

        await projector.rebuild()
        assert await stored(projections) == expected, "rebuilt"

        some_session = log[-1].session_id
        await projector.rebuild(some_session)
        assert await stored(projections) == expected, "rebuilt one session"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs, cuts=chunk_cuts, page_size=st.integers(1, 9))
async def test_on_sqlite_fold_equals_incremental_equals_rebuilt(
    log: list[RecordedEvent], cuts: list[int], page_size: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'agentlog.db'}"
        await check_fold_equals_incremental_equals_rebuilt(url, log, cuts, page_size)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(log=logs, cuts=chunk_cuts, page_size=st.integers(1, 9))
async def test_on_postgres_fold_equals_incremental_equals_rebuilt(
    postgres_url: str, log: list[RecordedEvent], cuts: list[int], page_size: int
) -> None:
    # postgres_url skips the test when PostgreSQL is missing; each example gets its own schema.
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        await check_fold_equals_incremental_equals_rebuilt(
            f"{POSTGRES_URL}?schema={schema}", log, cuts, page_size
        )
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
