"""What a large fork, and then the deletion of the fork, cost everyone else: while one session
of N events is forked (and then the fork deleted), another session's writer appends one event
every 10 ms, and a ticker measures the event loop.

    .venv/bin/python bench/fork_beside_appends.py [--events 60000] [--postgres URL]

Prints, on SQLite and PostgreSQL, for the fork and for the delete: its time, the slowest
unrelated append during it, and the longest the event loop was held (a 5 ms ticker's largest
lateness); the same two for a second of doing nothing first (what the machine's own load
costs), and the load average. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg

from agentlog.domain.events import CustomEventRecorded, SessionCreated, TextDelta
from agentlog.infra.sessions.deletion import delete_log
from agentlog.infra.sessions.forking import fork_session
from agentlog.infra.store.opening import open_store


async def measure(url: str, events: int) -> dict[str, float]:
    async with open_store(url) as store:
        await store.append("big", [SessionCreated()])
        for start in range(0, events, 4000):
            batch = [TextDelta(message_id="m", block_index=0, delta="x" * 40) for _ in range(4000)]
            await store.append("big", batch[: min(4000, events - start)])
        await store.append("other", [SessionCreated()])
        fork_id = "fork-" + uuid.uuid4().hex[:6]
        figures: dict[str, float] = {}
        for name, work in (
            ("idle", lambda: asyncio.sleep(1.0)),  # the machine's own noise, for comparison
            ("fork", lambda: fork_session(store, "big", events + 1, fork_id, cwd="/tmp")),
            ("delete", lambda: delete_log(store, fork_id, "bench")),
        ):
            took, slowest, held = await _beside_appends(store, work)
            figures |= {name: took, f"{name}_append": slowest, f"{name}_held": held}
    return figures


async def _beside_appends(
    store: Any, work: Callable[[], Awaitable[object]]
) -> tuple[float, float, float]:
    """`work`'s time, the slowest unrelated append and the longest loop hold meanwhile."""
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
    await work()
    took = time.perf_counter() - started
    done.set()
    await asyncio.gather(*tasks)
    return took, slowest, held


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} (2-core machine shared)")
    print(
        "| backend | events | idle 1 s: slowest append s | loop held s | fork s "
        "| slowest unrelated append s | loop held s | delete s | slowest unrelated append s "
        "| loop held s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
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
                f"| {name} | {args.events:,} | {r['idle_append']:.3f} | {r['idle_held']:.3f} "
                f"| {r['fork']:.2f} | {r['fork_append']:.3f} "
                f"| {r['fork_held']:.3f} | {r['delete']:.2f} | {r['delete_append']:.3f} "
                f"| {r['delete_held']:.3f} |",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
