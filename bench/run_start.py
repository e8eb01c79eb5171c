"""Run start and resumed-stream latency against the session's length: O(run), not O(session).

    .venv/bin/python bench/run_start.py [--sizes 1000,10000,100000] [--repeat 3] [--postgres URL]

For each size, one session is filled straight through the store with earlier runs (10 runs of
text deltas, each started and finished) up to that many events; then, against `agentlog serve`
on PostgreSQL (no Redis: the run lease lives in PostgreSQL), each repetition:
- starts a run (`POST /v1/sessions/{id}/runs`, a 2-second tool) and times the 202;
- opens `GET /v1/sessions/{id}/stream` (useChat's resume) and times its first body bytes
  (the run's `start` chunk), and the time to the run's first agent event;
- waits for the run's end.
The sessions are filled as if recorded before the store kept the CLI's transcript: the first
run of each converts its events once (the one read of the whole log); the later runs resume
the transcript the first one mirrored. Prints the first run's time to the agent's first step,
and the medians of the later runs. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp
import asyncpg

from agentlog.domain.events import RunFinished, RunStarted, SessionCreated, TextCompleted, TextDelta
from agentlog.infra.store.opening import open_store
from tests.support.server import ServerProcess

PROMPT = "[scenario:long-tool] Run the slow operation for 2 seconds"
EARLIER_RUNS = 10


async def fill(url: str, session_id: str, events: int) -> None:
    async with open_store(url) as store:
        await store.append(session_id, [SessionCreated()])
        per_run = max(3, (events - 1) // EARLIER_RUNS)
        written = 1
        run = 0
        while written < events:
            run_id = f"old-{run}"
            count = min(per_run, events - written)
            body = [
                TextDelta(run_id=run_id, message_id=f"m{run}", block_index=0, delta=f"t{i} ")
                for i in range(max(0, count - 3))
            ]
            batch = [
                RunStarted(run_id=run_id, prompt=f"question {run}"),
                *body,
                TextCompleted(run_id=run_id, message_id=f"m{run}", text=f"answer {run}"),
                RunFinished(run_id=run_id),
            ][:count]
            for start in range(0, len(batch), 4000):
                await store.append(session_id, batch[start : start + 4000])
            written += len(batch)
            run += 1


async def one_run(http: aiohttp.ClientSession, base: str, session_id: str) -> tuple[float, ...]:
    started = time.perf_counter()
    async with http.post(f"{base}/v1/sessions/{session_id}/runs", json={"prompt": PROMPT}) as r:
        body = await r.json()
        assert r.status == 202, body
    accepted = time.perf_counter() - started
    run_id = body["run_id"]
    opened = time.perf_counter()
    async with http.get(f"{base}/v1/sessions/{session_id}/stream") as response:
        assert response.status == 200, await response.text()
        first = await response.content.readany()
        first_byte = time.perf_counter() - opened
        assert b"start" in first, first[:200]
        text = first
        while b'"start-step"' not in text:  # the agent's first step: the CLI is up
            text += await response.content.readany()
        agent_up = time.perf_counter() - started
        while b"[DONE]" not in text:
            text += await response.content.readany()
    # The lease is released after the CLI exits: wait for it before the next start.
    while True:
        async with http.get(f"{base}/v1/sessions/{session_id}") as r:
            if ((await r.json()).get("active_run") or {}).get("run_id") != run_id:
                break
        await asyncio.sleep(0.05)
    return accepted, first_byte, agent_up


def bench_arguments(description: str, repeat: int) -> argparse.Namespace:
    """`--sizes`, `--repeat` and `--postgres`, as both start benches take them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "AGENTLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    return args


@asynccontextmanager
async def served_sessions(postgres: str, sizes: list[int]) -> AsyncIterator[ServerProcess]:
    """Sessions `s<size>` filled (`fill`) in a schema of their own, and `agentlog serve` on
    it (scripted agent, no Redis: the run lease lives in PostgreSQL); all removed after."""
    schema = "bench_" + uuid.uuid4().hex[:8]
    url = f"{postgres}?schema={schema}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for size in sizes:
                await fill(url, f"s{size}", size)
            env = {
                "AGENTLOG_DATABASE_URL": url,
                "AGENTLOG_AGENT": "scripted",
                "AGENTLOG_WORKSPACE_DIR": str(Path(tmp) / "workspaces"),
                "TMPDIR": tmp,
                "AGENTLOG_REDIS_URL": "",
            }
            server = ServerProcess(Path(tmp), env).start()
            try:
                yield server
            finally:
                server.stop()
        finally:
            conn = await asyncpg.connect(postgres)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


async def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0], repeat=4)
    async with served_sessions(args.postgres, args.sizes) as server:
        print(
            f"{'events':>8} | {'run start (202) ms':>18} | {'GET /stream TTFB ms':>19} "
            f"| {'first step, converting ms':>25} | {'first step, resumed ms':>22}"
        )
        async with aiohttp.ClientSession() as http:
            for size in args.sizes:
                samples = [
                    await one_run(http, server.url, f"s{size}") for _ in range(max(2, args.repeat))
                ]
                converting = samples[0][2] * 1000
                accepted, ttfb, agent = (
                    statistics.median(column) * 1000 for column in zip(*samples[1:], strict=True)
                )
                print(
                    f"{size:>8} | {accepted:>18.1f} | {ttfb:>19.1f} "
                    f"| {converting:>25.0f} | {agent:>22.0f}"
                )


if __name__ == "__main__":
    asyncio.run(main())
