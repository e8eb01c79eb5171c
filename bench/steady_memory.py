"""Memory under steady small appends and subscribers: does RSS plateau within minutes?

    .venv/bin/python bench/steady_memory.py [--minutes 10] [--rate 400] [--sessions 2000]
                                            [--subscribers 50] [--sqlite]

Issue 21's memory goal: with every cache bounded in bytes, a server under a steady load of
ordinary traffic levels off instead of growing with what it has written. For `--minutes`, one
`agentlog serve` process (PostgreSQL by default, a fresh schema) takes:
- appends: `--rate` POSTs a second of one ~220-byte custom event each, spread over a pool of
  `--sessions` sessions that keeps turning over (every append goes to a random session of the
  pool, and every second 1% of the pool is replaced by new sessions), so the caches keyed by
  session keep meeting sessions they have not seen;
- subscribers: `--subscribers` SSE clients at a time, each following a random session of the
  pool from offset 0 for 2 to 10 seconds, then going away and coming back on another.
Every 30 s it prints the server's RSS, the appends and deliveries so far, and at the end the
growth over the last half of the run against the first half. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from bench.memory import rss_mib
from bench.scratch_database import add_postgres_argument, scratch_database
from tests.support.server import ServerProcess

EVENT = {"type": "custom", "name": "tick", "data": {"text": "y" * 160}}


class Pool:
    """The sessions appends and subscribers choose from; it turns over as the run goes on."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.made = 0

    def pick(self) -> str:
        return random.choice(self.ids)

    async def fill(self, http: aiohttp.ClientSession, base: str, size: int) -> None:
        gate = asyncio.Semaphore(32)

        async def make() -> None:
            async with gate:
                self.ids.append(await new_session(http, base))

        await asyncio.gather(*(make() for _ in range(size)))
        self.made += size

    async def turn_over(self, http: aiohttp.ClientSession, base: str, fraction: float) -> None:
        for _ in range(max(1, int(len(self.ids) * fraction))):
            self.ids[random.randrange(len(self.ids))] = await new_session(http, base)
            self.made += 1


async def new_session(http: aiohttp.ClientSession, base: str) -> str:
    sid = "steady-" + uuid.uuid4().hex[:12]
    async with http.post(f"{base}/v1/sessions", json={"id": sid}) as r:
        assert r.status == 201, await r.text()
    return sid


async def appender(
    http: aiohttp.ClientSession,
    base: str,
    pool: Pool,
    rate: float,
    stop: float,
    counts: defaultdict[str, int],
) -> None:
    """Open loop at `rate` a second: a task per POST, so a slow answer does not slow the rate."""
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        sid = pool.pick()
        try:
            async with http.post(f"{base}/v1/sessions/{sid}/events", json={"events": [EVENT]}) as r:
                await r.read()
                counts["appended" if r.status == 200 else f"status {r.status}"] += 1
        except aiohttp.ClientError:
            counts["client errors"] += 1

    interval, next_at = 1 / rate, time.monotonic()
    while time.monotonic() < stop:
        task = asyncio.create_task(one())
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*pending, return_exceptions=True)


async def subscriber(
    http: aiohttp.ClientSession, base: str, pool: Pool, stop: float, counts: defaultdict[str, int]
) -> None:
    while time.monotonic() < stop:
        sid = pool.pick()
        url = f"{base}/v1/sessions/{sid}/events?offset=0"
        try:
            async with asyncio.timeout(random.uniform(2, 10)):
                async with http.get(url, headers={"accept": "text/event-stream"}) as response:
                    async for chunk in response.content.iter_any():
                        counts["deliveries"] += chunk.count(b"\nid: ") + chunk.startswith(b"id: ")
        except (TimeoutError, aiohttp.ClientError):
            pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--sqlite", action="store_true")
    add_postgres_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(args.sqlite, args.postgres, tmp, "steady") as (url, _):
            await measure(args, tmp, url)


async def measure(args: argparse.Namespace, tmp: str, url: str) -> None:
    """The load against one fresh server on `url`; its RSS every 30 s."""
    server = ServerProcess(Path(tmp), {"AGENTLOG_DATABASE_URL": url}).start()
    assert server.proc is not None
    pid = server.proc.pid
    samples: list[tuple[float, float]] = []
    counts: defaultdict[str, int] = defaultdict(int)
    try:
        pool = Pool()
        started = time.monotonic()
        stop = started + args.minutes * 60
        print(f"start: RSS {rss_mib(pid):.0f} MiB; {'SQLite' if args.sqlite else 'PostgreSQL'}")
        print("| minute | RSS MiB | appended | deliveries | sessions made |")
        print("|---|---|---|---|---|")
        connector = aiohttp.TCPConnector(limit=args.subscribers + 64)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            await pool.fill(http, server.url, args.sessions)
            started = time.monotonic()
            stop = started + args.minutes * 60
            load = [
                asyncio.create_task(appender(http, server.url, pool, args.rate, stop, counts)),
                *(
                    asyncio.create_task(subscriber(http, server.url, pool, stop, counts))
                    for _ in range(args.subscribers)
                ),
            ]
            next_sample = started + 30
            while time.monotonic() < stop:
                await asyncio.sleep(1)
                await pool.turn_over(http, server.url, 0.01)
                if time.monotonic() >= next_sample:
                    next_sample += 30
                    minute = (time.monotonic() - started) / 60
                    rss = rss_mib(pid)
                    samples.append((minute, rss))
                    print(
                        f"| {minute:.1f} | {rss:.0f} | {counts['appended']} | "
                        f"{counts['deliveries']} | {pool.made} |",
                        flush=True,
                    )
            await asyncio.gather(*load, return_exceptions=True)
        others = {k: v for k, v in counts.items() if k not in ("appended", "deliveries") and v}
        if others:
            print(f"other outcomes: {others}")
        if len(samples) >= 4:
            half = len(samples) // 2
            first = samples[half - 1][1] - samples[0][1]
            last = samples[-1][1] - samples[half - 1][1]
            print(
                f"RSS growth: first half {first:+.0f} MiB, second half {last:+.0f} MiB "
                f"(peak {max(r for _, r in samples):.0f} MiB)"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
