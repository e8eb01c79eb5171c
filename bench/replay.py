"""SSE replay speed: one client reads 100,000 events of one session from `agentlog serve`.

    .venv/bin/python bench/replay.py [--events N] [--postgres URL] [--sqlite]

The log is written straight to the store in large batches, then a client streams it with
`?live=false` from offset 0 and counts frames. Beside it, the peer: a raw paged read of the same
rows and columns straight from the database (asyncpg, or sqlite3), in pages of the size the
server reads, with no decoding and no HTTP. Prints events/s of both and their ratio, and the CPU
per replayed event of the server and of the client (this process). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
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
            # The tail of the previous chunk goes in front of the next: a frame's `\nid: `
            # split across two chunks is counted once, not missed.
            carry = b"\n"
            async for chunk in response.content.iter_chunked(1 << 16):
                frames += (carry + chunk).count(b"\nid: ")
                carry = (carry + chunk)[-4:]
        elapsed = time.perf_counter() - started
    if frames != expected:
        raise SystemExit(f"replayed {frames} frames, expected {expected}")
    return expected / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# What the server reads per page (transport/streaming/session_feed.py PAGE) and the columns.
RAW_PAGE = 1000
RAW_COLUMNS = "originator_id, originator_version, notification_id, recorded_at, state"


async def raw_read_postgres(dsn: str, schema: str, expected: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        sql = (
            f'SELECT {RAW_COLUMNS} FROM "{schema}".agentlog_events WHERE originator_id = $1 '
            "AND originator_version > $2 ORDER BY originator_version LIMIT $3"
        )
        started = time.perf_counter()
        after, rows = 0, 0
        while page := await conn.fetch(sql, "replay", after, RAW_PAGE):
            rows += len(page)
            after = page[-1][1]
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    if rows != expected:
        raise SystemExit(f"read {rows} rows, expected {expected}")
    return expected / elapsed


def raw_read_sqlite(path: str, expected: int) -> float:
    conn = sqlite3.connect(path)
    try:
        sql = (
            f"SELECT {RAW_COLUMNS} FROM agentlog_events WHERE originator_id = ? "
            "AND originator_version > ? ORDER BY originator_version LIMIT ?"
        )
        started = time.perf_counter()
        after, rows = 0, 0
        while page := conn.execute(sql, ("replay", after, RAW_PAGE)).fetchall():
            rows += len(page)
            after = page[-1][1]
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    if rows != expected:
        raise SystemExit(f"read {rows} rows, expected {expected}")
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
            assert server.proc is not None
            try:
                rates, raw_rates, cpu_us, client_us = [], [], [], []
                for _ in range(3):  # alternating, so both see the same machine load
                    cpu_before = cpu_seconds(server.proc.pid)
                    client_before = time.process_time()
                    rates.append(await replay(server.url, args.events))
                    cpu_us.append((cpu_seconds(server.proc.pid) - cpu_before) / args.events * 1e6)
                    client_us.append((time.process_time() - client_before) / args.events * 1e6)
                    if args.sqlite:
                        raw_rates.append(raw_read_sqlite(f"{tmp}/replay.db", args.events))
                    else:
                        raw_rates.append(
                            await raw_read_postgres(args.postgres, schema, args.events)
                        )
            finally:
                server.stop()
        finally:
            if not args.sqlite:
                conn = await asyncpg.connect(args.postgres)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()
    store = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"replay of {args.events:,} events from {store} over SSE: best {max(rates):,.0f} "
        f"events/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    print(f"server CPU per replayed event: {', '.join(f'{c:.1f}' for c in cpu_us)} µs")
    # The client (aiohttp reading, counting frames) shares the machine's cores with the server:
    # when its CPU per event nears the server's, the replay measures the client.
    print(f"client CPU per replayed event: {', '.join(f'{c:.1f}' for c in client_us)} µs")
    print(
        f"raw paged read of the same rows ({RAW_PAGE} a page): best {max(raw_rates):,.0f} "
        f"rows/s (runs: {', '.join(f'{r:,.0f}' for r in raw_rates)})"
    )
    print(
        f"replay / raw = {max(rates) / max(raw_rates):.2f} (best of each); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    asyncio.run(main())
