"""What a large fork costs everyone else: while one session of N events is forked, another
session's writer appends one event every 10 ms, and a ticker measures the event loop.

    .venv/bin/python bench/fork_beside_appends.py [--events 60000] [--postgres URL]

Prints, on SQLite and PostgreSQL: the fork's time, the slowest unrelated append during it,
and the longest the event loop was held (a 5 ms ticker's largest lateness). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg

from agentlog.domain.events import CustomEventRecorded, SessionCreated, TextDelta
from agentlog.infra.sessions.forking import fork_session
from agentlog.infra.store.opening import open_store


async def measure(url: str, events: int) -> dict[str, float]:
    async with open_store(url) as store:
        await store.append("big", [SessionCreated()])
        for start in range(0, events, 4000):
            batch = [TextDelta(message_id="m", block_index=0, delta="x" * 40) for _ in range(4000)]
            await store.append("big", batch[: min(4000, events - start)])
        await store.append("other", [SessionCreated()])
        done = asyncio.Event()
        slowest = 0.0
        held = 0.0

        async def writer() -> None:
            nonlocal slowest
            while not done.is_set():
                started = time.perf_counter()
                await store.append("other", [CustomEventRecorded(name="tick")])
                slowest = max(slowest, time.perf_counter() - started)
                await asyncio.sleep(0.01)

        async def ticker() -> None:
            nonlocal held
            while not done.is_set():
                started = time.perf_counter()
                await asyncio.sleep(0.005)
                held = max(held, time.perf_counter() - started - 0.005)

        tasks = [asyncio.create_task(writer()), asyncio.create_task(ticker())]
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        await fork_session(store, "big", events + 1, "fork-" + uuid.uuid4().hex[:6], cwd="/tmp")
        took = time.perf_counter() - started
        done.set()
        await asyncio.gather(*tasks)
    return {"fork": took, "slowest_append": slowest, "loop_held": held}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print("| backend | events | fork s | slowest unrelated append s | loop held s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        schema = "bench_" + uuid.uuid4().hex[:8]
        for name, url in (
            ("sqlite", f"sqlite:///{tmp}/fork.db"),
            ("postgres", f"{args.postgres}?schema={schema}"),
        ):
            try:
                r = await measure(url, args.events)
            finally:
                if name == "postgres":
                    conn = await asyncpg.connect(args.postgres)
                    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    await conn.close()
            print(
                f"| {name} | {args.events:,} | {r['fork']:.2f} | {r['slowest_append']:.3f} "
                f"| {r['loop_held']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
