"""Append throughput and latency, PostgreSQL and SQLite. Prints figures; asserts nothing.

    .venv/bin/python bench/append.py [--postgres URL] [--seconds S] [--skip-sqlite]

Scenarios, each on a fresh schema / file, every append durable (synchronous commit):
  single      one session, one writer, one event per append (latency of one round trip)
  64-sessions 64 sessions, each with its own writer appending one event at a time, closed loop
  64-fenced   the same, each writer a run streaming text deltas with its fence (only the
              session's current run may write), as an agent run's recorder appends
  5k-offered  open loop: 5,000 events/s offered across 64 sessions; latency from the moment
              an append was due until it was acknowledged
  raw         the physical reference: asyncpg executemany of 64 rows per transaction into a
              bare table (no ordering, no heads), one connection, same durability
  pairs       64-sessions and raw again, back to back, `--rounds` times: the ratio of each pair,
              with the CPU its writing PostgreSQL backend spent per transaction (from /proc, so
              when PostgreSQL runs on this machine) and this process's CPU per event
Events are ~220 bytes of JSON, like the notes' measurements.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from agentlog.domain.events import CustomEventRecorded, RunStarted, SessionCreated, TextDelta
from agentlog.domain.ports.event_store import RunFence
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store

PAYLOAD = "x" * 150


def event(i: int) -> CustomEventRecorded:
    return CustomEventRecorded(name="bench", data={"text": PAYLOAD, "i": i})


def backend_cpu(pid: int) -> float:
    """CPU seconds of a PostgreSQL backend on this machine (nan when it is elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def writer_backend(store: StoreBase) -> int | None:
    """The pid of the backend that writes a PostgreSQL store's appends."""
    writer = getattr(store, "_writer", None)
    if writer is None:
        return None
    conn = await writer()
    pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    return pid


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


async def single(store: StoreBase, seconds: float) -> dict[str, float]:
    await store.append("single", [SessionCreated()])
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await store.append("single", [event(len(latencies))])
        latencies.append(time.perf_counter() - started)
    return {
        "events_s": len(latencies) / seconds,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
    }


async def many_sessions(
    store: StoreBase, seconds: float, sessions: int = 64, prefix: str = "c"
) -> dict[str, float]:
    names = [f"{prefix}{i}" for i in range(sessions)]
    await asyncio.gather(*(store.append(n, [SessionCreated()]) for n in names))
    latencies: list[float] = []
    before = store.commit_stats.transactions
    backend = await writer_backend(store)
    backend_before = backend_cpu(backend) if backend else float("nan")
    python_before = time.process_time()
    deadline = time.perf_counter() + seconds

    async def writer(name: str) -> None:
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await store.append(name, [event(i)])
            latencies.append(time.perf_counter() - started)
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in names))
    elapsed = time.perf_counter() - started
    transactions = max(store.commit_stats.transactions - before, 1)
    backend_seconds = backend_cpu(backend) - backend_before if backend else float("nan")
    return {
        "events_s": len(latencies) / elapsed,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "events_per_tx": len(latencies) / transactions,
        "db_cpu_per_tx": backend_seconds / transactions,
        "python_cpu_per_event": (time.process_time() - python_before) / max(len(latencies), 1),
    }


async def fenced_sessions(store: StoreBase, seconds: float, sessions: int = 64) -> dict[str, float]:
    """As 64-sessions, but each writer is a run streaming its text: every append is fenced
    (only the session's current run may write), as a run's recorder appends."""
    names = [f"f{i}" for i in range(sessions)]
    await asyncio.gather(*(store.append(n, [SessionCreated()]) for n in names))
    fences = {}
    for n in names:
        [started] = await store.append(n, [RunStarted(run_id=f"run-{n}", prompt="go")])
        fences[n] = RunFence(run_id=f"run-{n}", token=started)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def writer(name: str) -> None:
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            delta = TextDelta(run_id=f"run-{name}", message_id="m", block_index=0, delta=PAYLOAD)
            await store.append(name, [delta], fence=fences[name])
            latencies.append(time.perf_counter() - started)
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in names))
    elapsed = time.perf_counter() - started
    return {
        "events_s": len(latencies) / elapsed,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
    }


async def offered(
    store: StoreBase, seconds: float, rate: int = 5000, sessions: int = 64
) -> dict[str, float]:
    names = [f"o{i}" for i in range(sessions)]
    await asyncio.gather(*(store.append(n, [SessionCreated()]) for n in names))
    latencies: list[float] = []
    # Only appends still in flight are held: keeping every finished task alive would make the
    # garbage collector's full passes (and the latency they add) grow with the run's length.
    in_flight: set[asyncio.Task[None]] = set()

    async def one(name: str, due: float, i: int) -> None:
        await store.append(name, [event(i)])
        latencies.append(time.perf_counter() - due)

    start = time.perf_counter()
    total = int(rate * seconds)
    tick = 0.001
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due_count = min(total, int((now - start) * rate) + 1)
        while sent < due_count:
            due = start + sent / rate
            task = asyncio.create_task(one(names[sent % sessions], due, sent))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        await asyncio.sleep(tick)
    await asyncio.gather(*in_flight)
    elapsed = time.perf_counter() - start
    return {
        "events_s": len(latencies) / elapsed,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
    }


async def raw_reference(
    dsn: str, schema: str, seconds: float, rows_per_tx: int = 64, table: str = "raw"
) -> dict[str, float]:
    conn = await asyncpg.connect(dsn, server_settings={"synchronous_commit": "on"})
    try:
        await conn.execute(
            f'CREATE TABLE "{schema}".{table} (session_id text, seq bigint, state bytea)'
        )
        data = CustomEventRecorded(name="bench", data={"text": PAYLOAD, "i": 0})
        from agentlog.domain.events import encode_event

        blob = encode_event(data)
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        backend_before = backend_cpu(backend)
        count = 0
        transactions = 0
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            rows = [(f"c{i}", count + i, blob) for i in range(rows_per_tx)]
            async with conn.transaction():
                await conn.executemany(f'INSERT INTO "{schema}".{table} VALUES ($1, $2, $3)', rows)
            count += rows_per_tx
            transactions += 1
        return {
            "events_s": count / (time.perf_counter() - started),
            "db_cpu_per_tx": (backend_cpu(backend) - backend_before) / max(transactions, 1),
        }
    finally:
        await conn.close()


async def run_backend(label: str, url: str, seconds: float) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    async with open_store(url) as store:
        results["single"] = await single(store, seconds)
        results["64-sessions"] = await many_sessions(store, seconds)
        results["64-fenced"] = await fenced_sessions(store, seconds)
        results["5k-offered"] = await offered(store, seconds)
    return results


def show(label: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n## {label}")
    print("| scenario | events/s | p50 ms | p99 ms | events per transaction |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['events_s']:,.0f} | {r.get('p50', float('nan')):.2f} | "
            f"{r.get('p99', float('nan')):.2f} | {r.get('events_per_tx', float('nan')):.1f} |"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "AGENTLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of 64-sessions and raw")
    args = parser.parse_args()

    schema = "bench_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(args.postgres)
    pairs: list[tuple[dict[str, float], dict[str, float]]] = []
    try:
        url = f"{args.postgres}?schema={schema}"
        pg = await run_backend("PostgreSQL", url, args.seconds)
        # The goal's ratio, from pairs measured back to back: on a shared machine the load
        # changes within a minute, and a ratio of figures taken apart means nothing.
        async with open_store(url) as store:
            for n in range(args.rounds):
                ours = await many_sessions(store, args.seconds, prefix=f"p{n}-")
                raw = await raw_reference(args.postgres, schema, args.seconds, table=f"raw{n}")
                pairs.append((ours, raw))
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    pg["raw executemany (64 rows/tx)"] = raw
    show("PostgreSQL", pg)
    # Where a pair's difference goes: the database's CPU per transaction (its writing
    # backend's, from /proc when PostgreSQL runs here) and this process's CPU per event.
    print(
        "\n| pair | 64 sessions events/s | raw executemany events/s | ratio "
        "| database CPU per transaction ours / raw ms | our Python CPU per event us |"
    )
    print("|---|---|---|---|---|---|")
    for n, (ours, raw) in enumerate(pairs, 1):
        print(
            f"| {n} | {ours['events_s']:,.0f} | {raw['events_s']:,.0f} | "
            f"{ours['events_s'] / raw['events_s']:.2f} | {ours['db_cpu_per_tx'] * 1000:.2f} / "
            f"{raw['db_cpu_per_tx'] * 1000:.2f} | {ours['python_cpu_per_event'] * 1e6:.1f} |"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            lite = await run_backend("SQLite", f"sqlite:///{tmp}/bench.db", args.seconds)
        show("SQLite (WAL, synchronous=FULL)", lite)


if __name__ == "__main__":
    asyncio.run(main())
