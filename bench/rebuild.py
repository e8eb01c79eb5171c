"""How fast the projections rebuild from PostgreSQL: events/s over 100,000+ events, 1,000 sessions.

Run: .venv/bin/python bench/rebuild.py [postgresql://postgres@127.0.0.1:5432/test]
It writes a seeded log (bench/fold.py's realistic runs, interleaved across sessions) into a
fresh schema with the store's own append, then times:
- the pure fold of those events, in memory (no I/O),
- a full rebuild: read the log in pages, fold, write the new generation, swap,
- an incremental catch-up from an empty projection (the projector's own pages),
and drops the schema.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fold import run_events

from agentlog.domain.events import SessionCreated, SessionEvent
from agentlog.infra.postgres.backend import PostgresBackend
from agentlog.infra.postgres.event_store import PostgresEventStore
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projector import Projector, fold_page

SESSIONS = 1_000
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def session_chunks(rng: random.Random, session_id: str) -> list[list[SessionEvent]]:
    """One session's events as the appends that wrote them: the creation, then one per run."""
    chunks: list[list[SessionEvent]] = [[SessionCreated(title=session_id)]]
    for n in range(rng.randint(1, 3)):
        chunks.append(run_events(rng, session_id, n))
    return chunks


async def write_log(store: PostgresEventStore) -> int:
    rng = random.Random(20250101)
    sessions = {
        f"session-{i:04d}": session_chunks(rng, f"session-{i:04d}") for i in range(SESSIONS)
    }
    rounds = max(len(chunks) for chunks in sessions.values())
    total = 0
    for round_ in range(rounds):
        # Concurrent appends share transactions (group commit) and interleave the sessions.
        batch = [(sid, chunks[round_]) for sid, chunks in sessions.items() if round_ < len(chunks)]
        await asyncio.gather(*(store.append(sid, events) for sid, events in batch))
        total += sum(len(events) for _, events in batch)
    return total


async def main(url: str) -> None:
    schema = "bench_rebuild_" + uuid.uuid4().hex[:8]
    store = PostgresEventStore(url, schema=schema, pool_size=4)
    PostgresBackend(store)  # the projection store beside its log
    await store.open()
    try:
        started = time.perf_counter()
        total = await write_log(store)
        print(
            f"{total:,} events across {SESSIONS:,} sessions written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        async with open_projection_store(store) as projections:
            events = []
            after = 0
            while page := await store.read_all(after=after, limit=50_000):
                events += page
                after = page[-1].position
            started = time.perf_counter()
            fold_page(events, {}, {})
            seconds = time.perf_counter() - started
            print(f"{'pure fold (ui messages + sessions)':<40} {total / seconds:>10,.0f} events/s")

            projector = Projector(store, projections)
            timings = []
            for _ in range(3):
                result = await projector.rebuild()
                assert result.events == total and result.sessions == SESSIONS, result
                timings.append(result.seconds)
            seconds = min(timings)
            print(
                f"{'full rebuild from PostgreSQL':<40} {total / seconds:>10,.0f} events/s "
                f"({seconds:.2f} s, best of 3)"
            )

            async with store.pool.acquire() as conn:
                await conn.execute(
                    f'TRUNCATE "{schema}".agentlog_ui_states, "{schema}".agentlog_session_summaries'
                )
                await conn.execute(
                    f'UPDATE "{schema}".agentlog_projection_checkpoints SET position = 0'
                )
            started = time.perf_counter()
            folded = await projector.catch_up()
            seconds = time.perf_counter() - started
            assert folded == total
            print(
                f"{'incremental catch-up from empty':<40} {total / seconds:>10,.0f} events/s "
                f"(pages of {projector.page_size:,})"
            )
    finally:
        await store.close()
        conn = await asyncpg.connect(url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL))
