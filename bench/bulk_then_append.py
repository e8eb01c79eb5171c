"""Appends and reads right after a bulk load, with the planner's statistics as the load left
them and after the store refreshed them (agentlog.infra.store.statistics).

    .venv/bin/python bench/bulk_then_append.py [--sessions 20000] [--big 100000]
        [--appends 4000] [--postgres URL]

On a new database: `--sessions` sessions of 5 events each (appended, 64 at a time) and one
session of `--big` events written as an import writes it, but through the backend directly so
nothing refreshes the statistics. Then, twice (stale, then after `after_bulk_write`, the hook an
import and a fork call): `--appends` appends of one event each to random sessions, 64 at a
time; as many head lookups; and a read of the big session, 1,000 events a page. Prints the
rates side by side, on SQLite and PostgreSQL, and how long the refresh took. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg

from agentlog.domain.events import (
    CustomEventRecorded,
    SessionCreated,
    encode_event,
    type_of,
    utc_now,
)
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.imported_session import ImportedEvent, ImportedSession
from agentlog.infra.store.opening import open_store
from agentlog.infra.store.statistics import after_bulk_write

CONCURRENCY = 64


async def in_parallel(jobs: list[object], run: object) -> None:
    queue = list(jobs)

    async def worker() -> None:
        while queue:
            await run(queue.pop())  # type: ignore[operator]

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def bulk_load(store: StoreBase, sessions: int, big: int) -> None:
    async def fill(n: object) -> None:
        await store.append(
            f"s{n}", [SessionCreated(), *(CustomEventRecorded(name="n") for _ in range(4))]
        )

    await in_parallel(list(range(sessions)), fill)
    now = utc_now()
    events = [
        SessionCreated(),
        *(CustomEventRecorded(name="n", data={"i": i}) for i in range(big - 1)),
    ]
    imported = ImportedSession(
        session_id="big",
        events=[
            ImportedEvent(
                seq=seq, time=now, type=type_of(e), run_id=None, state=encode_event(e), event=e
            )
            for seq, e in enumerate(events, start=1)
        ],
    )
    await store.backend.import_session(imported)  # raw: the statistics stay as they were


async def measure(store: StoreBase, sessions: int, appends: int) -> tuple[float, float, float]:
    """Appends per second, head lookups per second, events read per second."""
    targets = [f"s{random.randrange(sessions)}" for _ in range(appends)]

    async def append(session_id: object) -> None:
        await store.append(str(session_id), [CustomEventRecorded(name="after")])

    began = time.perf_counter()
    await in_parallel(list(targets), append)
    append_rate = appends / (time.perf_counter() - began)

    async def look_up(session_id: object) -> None:
        await store.session(str(session_id))

    began = time.perf_counter()
    await in_parallel(list(targets), look_up)
    lookup_rate = appends / (time.perf_counter() - began)

    began, after, read = time.perf_counter(), 0, 0
    while page := await store.read("big", after=after, limit=1000):
        after, read = page[-1].seq, read + len(page)
    read_rate = read / (time.perf_counter() - began)
    return append_rate, lookup_rate, read_rate


async def run(url: str, name: str, args: argparse.Namespace) -> None:
    async with open_store(url) as store:
        began = time.perf_counter()
        await bulk_load(store, args.sessions, args.big)
        loaded = time.perf_counter() - began
        stale = await measure(store, args.sessions, args.appends)
        began = time.perf_counter()
        refreshed = await after_bulk_write(store, args.sessions * 5 + args.big)
        refresh = time.perf_counter() - began
        fresh = await measure(store, args.sessions, args.appends)
    events = args.sessions * 5 + args.big
    print(
        f"| {name} | {events:,} in {loaded:,.1f} s "
        f"| {f'{refresh * 1000:,.0f} ms' if refreshed else 'none (small load)'} "
        f"| {stale[0]:,.0f} → {fresh[0]:,.0f} | {stale[1]:,.0f} → {fresh[1]:,.0f} "
        f"| {stale[2]:,.0f} → {fresh[2]:,.0f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--big", type=int, default=100000)
    parser.add_argument("--appends", type=int, default=4000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(
        "| store | bulk load | refresh | appends/s stale → fresh | head lookups/s stale → fresh "
        "| big-session read ev/s stale → fresh |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        await run(f"sqlite:///{Path(tmp) / 'b.db'}", "SQLite", args)
    schema = "bench_" + uuid.uuid4().hex[:10]
    try:
        await run(f"{args.postgres}?schema={schema}", "PostgreSQL", args)
    finally:
        conn = await asyncpg.connect(args.postgres)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
