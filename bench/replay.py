"""SSE replay speed: one client reads 100,000 events of one session from `agentlog serve`.

    .venv/bin/python bench/replay.py [--events N] [--postgres URL] [--sqlite]

The log is written straight to the store in large batches, then a client streams it with
`?live=false` from offset 0 and counts frames. Prints events/s. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp
import asyncpg

from agentlog.domain.events import SessionCreated, TextDelta
from agentlog.infra.store.opening import open_store
from tests.support.server import ServerProcess


async def fill(url: str, events: int) -> None:
    async with open_store(url) as store:
        await store.append("replay", [SessionCreated()])
        batch = 2000
        for start in range(0, events - 1, batch):
            count = min(batch, events - 1 - start)
            await store.append(
                "replay",
                [
                    TextDelta(
                        run_id="r1", message_id="m1", block_index=0, delta=f"token {start + i} "
                    )
                    for i in range(count)
                ],
            )


async def replay(base: str, expected: int) -> float:
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        frames = 0
        async with http.get(
            f"{base}/v1/sessions/replay/events?live=false",
            headers={"Accept": "text/event-stream"},
        ) as response:
            async for chunk in response.content.iter_chunked(1 << 16):
                frames += chunk.count(b"\nid: ") + chunk.startswith(b"id: ")
        elapsed = time.perf_counter() - started
    if frames != expected:
        raise SystemExit(f"replayed {frames} frames, expected {expected}")
    return expected / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "AGENTLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--sqlite", action="store_true", help="replay from SQLite instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        schema = "bench_" + uuid.uuid4().hex[:8]
        url = f"sqlite:///{tmp}/replay.db" if args.sqlite else f"{args.postgres}?schema={schema}"
        try:
            await fill(url, args.events)
            server = ServerProcess(Path(tmp), {"AGENTLOG_DATABASE_URL": url}).start()
            try:
                rates = [await replay(server.url, args.events) for _ in range(3)]
            finally:
                server.stop()
        finally:
            if not args.sqlite:
                conn = await asyncpg.connect(args.postgres)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()
    store = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"replay of {args.events:,} events from {store}: best {max(rates):,.0f} events/s "
        f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )


if __name__ == "__main__":
    asyncio.run(main())
