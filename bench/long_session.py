"""Long sessions are flat: what one append, one page and one run start cost at 1k to 100k events.

    .venv/bin/python bench/long_session.py [--sizes 1000,10000,100000] [--appends 400]
        [--rate 100] [--runs 3] [--postgres URL] [--sqlite]

For each size, two sessions are filled straight through the store: `c<size>`, custom events
of ~200 bytes with no run (each its own message: a conversation of <size> messages), and
`a<size>`, agent events: runs of 20 events (a prompt, a step, text deltas, a tool call and its
result, the end), the last run cut before its tool returned (a crash, so reads hydrate it).
Then `agentlog serve` (one worker, scripted agent, no Redis) starts on them, its projector
catches up, the tables are analyzed (PostgreSQL), and for each session this prints:
- **CPU/append**: the server's user + system CPU (from /proc) over `--appends` custom events
  POSTed one by one at `--rate` per second, until its projector has folded them all (its
  checkpoint reached the log's end), divided by the appends: the request and the projector's
  pages, which used to rewrite the session's whole state every settle period;
- **last page**: `GET /messages?limit=50` (useChat's first load), median of 20, projector
  caught up;
- **hydrated page**: the same on the agent session, whose last run's tool is shown as
  interrupted (computed in the read);
- **run start**: `POST /runs` with `{"prompt"}` until its 202, median of `--runs` runs (each
  waited for to its end), and with useChat's body (`messages`, the user message's own id),
  which also checks that id against the conversation;
- **stall during a run**: the slowest of `GET /v1/sessions/{id}` asked every 20 ms while a
  run starts, resumes the conversation's transcript and ends (median over `--runs` runs): the
  longest the event loop was held, which any request then (a prompt sent meanwhile) waits.
And each figure at the largest size over the smallest (goal: at most 1.5). Asserts nothing;
other processes share the machine, so the load average is printed with the figures.
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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from agentlog.domain.events import (
    CustomEventRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    StepStarted,
    TextCompleted,
    TextDelta,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.store.opening import open_projection_store, open_store
from bench.scratch_database import add_postgres_argument, scratch_database
from tests.support.server import ServerProcess

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TEXT = "x" * 150
APPEND = {"events": [{"type": "custom", "name": "bench", "data": {"text": TEXT, "n": 1}}]}
PROMPT = "[scenario:text] hello"
PAGE = 50


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def custom_events(count: int) -> list[SessionEvent]:
    return [CustomEventRecorded(name="note", data={"text": TEXT, "n": i}) for i in range(count)]


def agent_run(run: int, *, ended: bool = True) -> list[SessionEvent]:
    run_id, message_id = f"run-{run}", f"m{run}"
    events: list[SessionEvent] = [
        RunStarted(run_id=run_id, prompt=f"question {run}"),
        StepStarted(run_id=run_id, message_id=message_id),
        *(
            TextDelta(run_id=run_id, message_id=message_id, block_index=0, delta=f"word {i} ")
            for i in range(12)
        ),
        TextCompleted(run_id=run_id, message_id=message_id, text="the answer " * 12),
        ToolCallStarted(
            run_id=run_id, tool_call_id=f"t{run}", tool_name="Bash", input={"command": "ls"}
        ),
    ]
    if ended:
        events += [
            ToolCallSucceeded(run_id=run_id, tool_call_id=f"t{run}", output="a b c"),
            StepStarted(run_id=run_id, message_id=f"{message_id}b"),
            TextCompleted(run_id=run_id, message_id=f"{message_id}b", text="done"),
            RunFinished(run_id=run_id, result="done"),
        ]
    return events


def agent_events(count: int) -> list[SessionEvent]:
    events: list[SessionEvent] = []
    run = 0
    while len(events) < count - len(agent_run(0, ended=False)):
        events += agent_run(run)
        run += 1
    return events + agent_run(run, ended=False)


async def fill(url: str, sizes: list[int]) -> None:
    async with open_store(url) as store:
        for size in sizes:
            for session_id, events in (
                (f"c{size}", custom_events(size - 1)),
                (f"a{size}", agent_events(size - 1)),
            ):
                await store.append(session_id, [SessionCreated(title=session_id)])
                for start in range(0, len(events), 4000):
                    await store.append(session_id, events[start : start + 4000])


async def caught_up(url: str) -> None:
    """Until the projector's checkpoint reaches the log's end."""
    async with open_store(url) as store, open_projection_store(store) as projections:
        end = await store.last_position()
        while (await projections.checkpoint()).position < end:
            await asyncio.sleep(0.05)


async def cpu_per_append(
    http: aiohttp.ClientSession, server: ServerProcess, url: str, session_id: str, args: Any
) -> float:
    await caught_up(url)
    assert server.proc is not None
    before = cpu_seconds(server.proc.pid)
    started = time.perf_counter()
    for i in range(args.appends):
        # Paced: the projector folds a page every settle period, as under steady traffic.
        delay = started + i / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        async with http.post(f"{server.url}/v1/sessions/{session_id}/events", json=APPEND) as r:
            assert r.status == 200, await r.text()
    await caught_up(url)
    return (cpu_seconds(server.proc.pid) - before) / args.appends * 1000


async def median_ms(call: Callable[[], Any], times: int = 20) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def last_page(http: aiohttp.ClientSession, base: str, session_id: str) -> float:
    async def get() -> None:
        async with http.get(f"{base}/v1/sessions/{session_id}/messages?limit={PAGE}") as r:
            body = await r.json()
            assert r.status == 200 and len(body["messages"]) == PAGE, body

    await get()
    return await median_ms(get)


async def session_idle(http: aiohttp.ClientSession, base: str, session_id: str) -> None:
    """Until the session shows no active run, so the next start starts rather than queues.
    (Compared to the bare run id, `active_run`, which is `{"run_id"}` or null, never matched:
    each start was sent while the one before still ran, and queued behind it.)"""
    while True:
        async with http.get(f"{base}/v1/sessions/{session_id}") as r:
            if (await r.json()).get("active_run") is None:
                return
        await asyncio.sleep(0.05)


async def run_start(
    http: aiohttp.ClientSession, base: str, session_id: str, runs: int, use_chat: bool
) -> float:
    samples = []
    await session_idle(http, base, session_id)  # the server's crash continuation at start-up
    for n in range(runs):
        if use_chat:
            message = {"id": f"u-{uuid.uuid4().hex[:12]}", "role": "user"}
            body: dict[str, Any] = {
                "messages": [{**message, "parts": [{"type": "text", "text": PROMPT}]}]
            }
        else:
            body = {"prompt": PROMPT}
        started = time.perf_counter()
        async with http.post(f"{base}/v1/sessions/{session_id}/runs", json=body) as r:
            answer = await r.json()
            assert r.status == 202 and answer["status"] == "started", answer
        if n:  # the first start of a session converts its log to a transcript once
            samples.append(time.perf_counter() - started)
        await session_idle(http, base, session_id)
    return statistics.median(samples) * 1000


async def stall_during_run(
    http: aiohttp.ClientSession, base: str, session_id: str, runs: int
) -> float:
    """The slowest `GET /v1/sessions/{id}` asked every 20 ms from a start's 202 to the run's
    end: how long the server's event loop was held at once while the run loaded and resumed
    the conversation's transcript. Median of `runs` runs."""
    samples = []
    await session_idle(http, base, session_id)
    for _ in range(runs):
        async with http.post(f"{base}/v1/sessions/{session_id}/runs", json={"prompt": PROMPT}) as r:
            assert r.status == 202, await r.text()
        slowest = 0.0
        while True:
            started = time.perf_counter()
            async with http.get(f"{base}/v1/sessions/{session_id}") as r:
                idle = (await r.json()).get("active_run") is None
            slowest = max(slowest, time.perf_counter() - started)
            if idle:
                break
            await asyncio.sleep(0.02)
        samples.append(slowest)
    return statistics.median(samples) * 1000


async def analyze(postgres: str, schema: str) -> None:
    """Planner statistics for the tables just filled, as autovacuum gives a database that has
    been in use (a bulk load straight through the store is not followed by ANALYZE)."""
    import asyncpg

    conn = await asyncpg.connect(postgres)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        for (table,) in tables:
            await conn.execute(f'ANALYZE "{schema}"."{table}"')
    finally:
        await conn.close()


@asynccontextmanager
async def served(args: argparse.Namespace) -> AsyncIterator[tuple[ServerProcess, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(args.sqlite, args.postgres, tmp, "agentlog") as (url, schema):
            await fill(url, args.sizes)
            env = {
                "AGENTLOG_DATABASE_URL": url,
                "AGENTLOG_AGENT": "scripted",
                "AGENTLOG_WORKSPACE_DIR": str(Path(tmp) / "workspaces"),
                "TMPDIR": tmp,
                "AGENTLOG_REDIS_URL": "",
            }
            server = ServerProcess(Path(tmp), env).start()
            try:
                await caught_up(url)
                if not args.sqlite:
                    await analyze(args.postgres, schema)
                yield server, url
            finally:
                server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--appends", type=int, default=400)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true")
    add_postgres_argument(parser)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"# {backend}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
        f"{args.appends} appends at {args.rate:.0f}/s"
    )
    columns = (
        "custom: CPU/append ms",
        "agent: CPU/append ms",
        "last page ms",
        "hydrated page ms",
        "run start ms",
        "useChat start ms",
        "stall during a run ms",
    )
    rows: dict[int, list[float]] = {}
    async with served(args) as (server, url), aiohttp.ClientSession() as http:
        print(f"{'events':>8} | " + " | ".join(columns))
        for size in args.sizes:
            custom, agent = f"c{size}", f"a{size}"
            figures = [
                await cpu_per_append(http, server, url, custom, args),
                await cpu_per_append(http, server, url, agent, args),
                await last_page(http, server.url, custom),
                await last_page(http, server.url, agent),
                await run_start(http, server.url, agent, args.runs, use_chat=False),
                await run_start(http, server.url, agent, args.runs, use_chat=True),
                await stall_during_run(http, server.url, agent, args.runs),
            ]
            rows[size] = figures
            print(
                f"{size:>8} | "
                + " | ".join(f"{v:>{len(c)}.2f}" for v, c in zip(figures, columns, strict=True))
            )
    smallest, largest = rows[min(rows)], rows[max(rows)]
    print(
        f"{'ratio':>8} | "
        + " | ".join(
            f"{b / a:>{len(c)}.2f}" for a, b, c in zip(smallest, largest, columns, strict=True)
        )
    )
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    asyncio.run(main())
