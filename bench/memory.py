"""Memory under a stream of large events: does the server's RSS level off?

    .venv/bin/python bench/memory.py [--rounds 32] [--events 100] [--event-kb 200] [--sqlite]

Each round creates a new session and appends `events` custom events of `event-kb` KB each
through the HTTP API (10 per request), first with nobody following, then again with an SSE
follower on each round's session reading it live. With the defaults one pass writes 32 x 20 MB,
10 times the default AGENTLOG_CACHE_BYTES (64 MiB). Prints the server's RSS after every round
(once the projector has folded it): it should climb while the caches fill, then stay level.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from bench.scratch_database import add_postgres_argument, scratch_database
from tests.support.server import ServerProcess

ID_LINE = re.compile(rb"(?:^|\n)id: (\d+)\n")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def follow(http: aiohttp.ClientSession, url: str, last_seq: int, done: asyncio.Event) -> None:
    """Read the session's stream live, keeping nothing but the last id seen."""
    seen = 0
    async with http.get(url, headers={"accept": "text/event-stream"}) as response:
        carry = b""
        async for chunk in response.content.iter_any():
            # An `id:` line may straddle two chunks: keep the end of the previous one.
            data = carry + chunk
            for seq in ID_LINE.findall(data):
                seen = max(seen, int(seq))
            carry = data[-32:]
            if seen >= last_seq:
                done.set()
                return


async def one_round(
    http: aiohttp.ClientSession, base: str, events: int, event_kb: int, follower: bool
) -> None:
    session = "mem-" + uuid.uuid4().hex[:8]
    async with http.post(f"{base}/v1/sessions", json={"id": session}) as r:
        assert r.status == 201, await r.text()
    done = asyncio.Event()
    reader = None
    if follower:
        url = f"{base}/v1/sessions/{session}/events?offset=0"
        reader = asyncio.create_task(follow(http, url, 1 + events, done))
    blob = "x" * (event_kb * 1000)
    for first in range(0, events, 10):
        batch = [
            {"type": "custom", "name": "blob", "data": {"i": i, "text": blob}}
            for i in range(first, min(events, first + 10))
        ]
        async with http.post(f"{base}/v1/sessions/{session}/events", json={"events": batch}) as r:
            assert r.status == 200, await r.text()
    if reader is not None:
        await asyncio.wait_for(done.wait(), 120)
        reader.cancel()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=32)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--event-kb", type=int, default=200)
    parser.add_argument("--sqlite", action="store_true")
    add_postgres_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(args.sqlite, args.postgres, tmp, "mem") as (url, _):
            await measure(args, tmp, url)


async def measure(args: argparse.Namespace, tmp: str, url: str) -> None:
    """The rounds against one fresh server on `url`; its RSS after each."""
    server = ServerProcess(Path(tmp), {"AGENTLOG_DATABASE_URL": url}).start()
    assert server.proc is not None
    try:
        print(f"start: RSS {rss_mib(server.proc.pid):.0f} MiB")
        print("| follower | round | MB written | RSS MiB |")
        print("|---|---|---|---|")
        written = 0.0
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for follower in (False, True):
                for n in range(1, args.rounds + 1):
                    started = time.perf_counter()
                    await one_round(http, server.url, args.events, args.event_kb, follower)
                    written += args.events * args.event_kb / 1000
                    # The projector folds behind the appends: let it finish the round.
                    await asyncio.sleep(max(1.0, (time.perf_counter() - started) / 4))
                    rss = rss_mib(server.proc.pid)
                    mode = "yes" if follower else "no"
                    print(f"| {mode} | {n} | {written:.0f} | {rss:.0f} |", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
