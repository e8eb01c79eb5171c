"""Forking a session against its length: the whole fork (read, copy, one transaction, the
transcript) through `agentlog.infra.sessions.forking.fork_session`, straight on the store.

    .venv/bin/python bench/fork.py [--sizes 1000,10000,100000] [--repeat 3] [--postgres URL]

For each size, one session is filled with 10 runs of text deltas up to that many events, then
forked at its head `--repeat` times (each under a new id); prints the median time, the events
copied per second and the transcript's lines, on SQLite and PostgreSQL. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg

from agentlog.domain.events import RunFinished, RunStarted, SessionCreated, TextCompleted, TextDelta
from agentlog.infra.sessions.forking import fork_session
from agentlog.infra.store.opening import open_store

RUNS = 10


async def fill(store: object, session_id: str, events: int) -> None:
    await store.append(session_id, [SessionCreated()])  # type: ignore[attr-defined]
    per_run = max(4, (events - 1) // RUNS)
    written, run = 1, 0
    while written < events:
        run_id = f"r{run}"
        count = min(per_run, events - written)
        deltas = max(0, count - 3)
        batch = [
            RunStarted(run_id=run_id, prompt=f"prompt {run}"),
            *(
                TextDelta(run_id=run_id, message_id=f"m{run}", block_index=0, delta=f"w{i} ")
                for i in range(deltas)
            ),
            TextCompleted(run_id=run_id, message_id=f"m{run}", block_index=0, text="answer"),
            RunFinished(run_id=run_id, result="answer"),
        ]
        for start in range(0, len(batch), 2000):
            await store.append(session_id, batch[start : start + 2000])  # type: ignore[attr-defined]
        written += len(batch)
        run += 1


async def measure(url: str, size: int, repeat: int) -> tuple[float, int, int]:
    async with open_store(url) as store:
        await fill(store, "src", size)
        head = await store.head("src")
        times: list[float] = []
        lines = 0
        for _ in range(repeat):
            began = time.perf_counter()
            made = await fork_session(store, "src", head, uuid.uuid4().hex, cwd="/tmp/bench-fork")
            times.append(time.perf_counter() - began)
            lines = made.transcript_entries
        return statistics.median(times), head, lines


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        "| store | events in the session | fork ms (median) | events copied/s | transcript lines |"
    )
    print("|---|---|---|---|---|")
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            seconds, head, lines = await measure(
                f"sqlite:///{Path(tmp) / 'b.db'}", size, args.repeat
            )
        print(f"| SQLite | {head:,} | {seconds * 1000:,.1f} | {head / seconds:,.0f} | {lines} |")
        schema = "bench_" + uuid.uuid4().hex[:10]
        try:
            seconds, head, lines = await measure(
                f"{args.postgres}?schema={schema}", size, args.repeat
            )
        finally:
            conn = await asyncpg.connect(args.postgres)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
        print(
            f"| PostgreSQL | {head:,} | {seconds * 1000:,.1f} | {head / seconds:,.0f} | {lines} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
