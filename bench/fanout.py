"""SSE fan-out: N subscribers follow one live session while a writer appends events through
the HTTP API, on one `agentlog serve` process or on `--workers` processes sharing the port.

    .venv/bin/python bench/fanout.py [--subscribers 100 1000 2000] [--seconds 10] [--rate 50]
        [--sqlite] [--workers 1 2] [--clients 2] [--loop auto|uvloop|asyncio]
    .venv/bin/python bench/fanout.py --sweep [--workers 1 2] [--sweep-subscribers 2000]
        [--rates 50 100 200 400 800] [--break-p99 1000]

Prints, per N: events delivered (all, once, in order, for every subscriber), append-to-receipt
latency p50/p99 (from the writer's POST to the subscriber's receipt of the frame), p99 from the
store's timestamp of the event (the delivery without the append's own wait), and server
memory per idle subscriber (RSS growth of every server process with N idle subscribers
connected / N). With `--workers` (PostgreSQL only), the same table per worker count: the kernel
spreads the subscribers' connections, and the writer's, over the workers (SO_REUSEPORT); the
spread is printed.

`--batch-clients` runs the subscriber processes under SCHED_BATCH: each send of the push wakes
a subscriber's process, which otherwise takes the core from the server mid-push (subscribers
on other machines never do); compare a run with and without it to see what that costs.

`--sweep` holds the subscribers at one count and raises the offered rate step by step until a
step breaks: a step breaks when not every subscriber received every event once and in order
within the run and a drain window (`--drain`, 5 s), or when p99 passes `--break-p99`.

The subscribers run in `--clients` processes of their own, so the bench's client is not the
bottleneck; each prints the CPU it used during the live window (% of one core, the busiest
client's): near 100% means the client, not the server, set the figures, and more `--clients`
are needed. Server CPU is every server process's CPU over the same window (% of one core; two
cores are 200%). `--loop` sets the servers' AGENTLOG_EVENT_LOOP. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp
import asyncpg

from tests.support.server import ServerProcess

FRAME = re.compile(
    rb'id: (\d+)\n[^\n]*\ndata: [^\n]*?"time":"([^"]+)"[^\n]*?"data":\{"t":([0-9.]+)'
)
WORKER = re.compile(rb"\r\nAgentlog-Worker: (\d+)/", re.IGNORECASE)
# Latencies travel from the client processes as counts per 0.1 ms: 100,000 frames a second
# would otherwise be megabytes of floats to pickle.
BUCKET = 10_000


@functools.lru_cache(maxsize=4096)  # every subscriber receives the same few stamps
def stamped(time: bytes) -> float:
    """The store's timestamp of an event (when its append was written), as epoch seconds."""
    return datetime.fromisoformat(time.decode().replace("Z", "+00:00")).timestamp()


def process_tree(pid: int) -> list[int]:
    """The server's pid and its descendants' (the workers of `--workers N`)."""
    pids = [pid]
    for p in pids:
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids += [int(c) for c in children]
    return pids


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User and system CPU of these processes so far."""
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])  # utime
        system += int(fields[12])  # stime: for a push, mostly the sockets' sends
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def runnable_seconds(pids: list[int]) -> float:
    """How long these processes' main threads (the event loops) have been ready to run but
    waiting for a core (schedstat): on a busy machine, the part of the latency that is the
    machine's, not the server's."""
    waited = 0
    for pid in pids:
        try:
            waited += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
        except OSError:
            continue
    return waited / 1e9


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Subscriber(asyncio.Protocol):
    """A deliberately cheap SSE client: a bare protocol that keeps what arrives with its
    time of arrival and parses it only after the run, so a client process can hold thousands
    of connections and take as little as it can of the cores it shares with the server.
    (Parsing each read as it came took about two thirds of the client's CPU: at 2,000
    subscribers the two clients used as much CPU as the server they measured.)"""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.reads: list[tuple[float, bytes]] = []  # (time of arrival, bytes), in order
        self.frames = 0  # frames seen so far (counted cheaply, for the drain's wait)
        self.ended_newline = False
        self.last_receipt = 0.0
        self.worker = 0
        self.refused = b""  # the status line of a refusal
        self.connected = asyncio.Event()
        self.head = b""
        self.headers_done = False
        self.transport: asyncio.Transport | None = None
        self.seqs: list[int] = []
        self.latencies: list[float] = []
        self.from_store: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.headers_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            # A refusal (503 beyond AGENTLOG_MAX_SSE_CONNECTIONS) would otherwise pass for a
            # subscriber that was sent nothing.
            if not self.head.startswith(b"HTTP/1.1 200"):
                self.refused = self.head.split(b"\r\n", 1)[0]
            worker = WORKER.search(self.head, 0, end + 2)
            self.worker = int(worker.group(1)) if worker else 0
            self.headers_done = True
            self.connected.set()
            data, self.head = self.head[end + 4 :], b""
        # Every frame this bench sends ends with "\n\n" (data is compact JSON), as does the
        # retry hint; one split across two reads is counted by the byte before. (The parse
        # after the run is exact either way.)
        self.frames += data.count(b"\n\n") + (self.ended_newline and data[:1] == b"\n")
        self.ended_newline = data[-1:] == b"\n"
        self.reads.append((now, data))
        self.last_receipt = now

    def parse(self) -> None:
        """The frames received, each timed at the read that completed it."""
        buffer = b""
        for now, data in self.reads:
            buffer += data
            cut = buffer.rfind(b"\n\n")
            if cut < 0:
                continue
            complete, buffer = buffer[: cut + 2], buffer[cut + 2 :]
            for seq, stamp, sent in FRAME.findall(complete):
                self.seqs.append(int(seq))
                self.latencies.append(now - float(sent))
                self.from_store.append(now - stamped(stamp))
        self.reads = []

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect_all(port: int, request: bytes, count: int) -> list[Subscriber]:
    loop = asyncio.get_running_loop()

    async def connect() -> Subscriber:
        _, sub = await loop.create_connection(lambda: Subscriber(request), "127.0.0.1", port)
        await sub.connected.wait()
        return sub

    subs: list[Subscriber] = []
    for i in range(0, count, 100):
        subs += await asyncio.gather(*(connect() for _ in range(min(100, count - i))))
    return subs


def client_process(
    conn: Connection, port: int, request: bytes, count: int, batch: bool = False
) -> None:
    """One subscriber process: connect `count`, report ready, hold them through the live
    window, then send back what they received. With `batch`, the process is SCHED_BATCH: woken
    by the server's send it waits for a free core (or the next tick) instead of taking the
    server's, as a subscriber on another machine would."""
    if batch:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    asyncio.run(_client(conn, port, request, count))


async def _client(conn: Connection, port: int, request: bytes, count: int) -> None:
    loop = asyncio.get_running_loop()
    subs = await connect_all(port, request, count)
    conn.send(Counter(s.worker for s in subs))
    await loop.run_in_executor(None, conn.recv)  # the writer starts
    cpu, wall = own_cpu_seconds(), time.perf_counter()
    total, drain_until = await loop.run_in_executor(None, conn.recv)  # the writer is done
    # The retry hint is one more "\n\n" than the events.
    while time.time() < drain_until and any(s.frames < total + 1 for s in subs):
        await asyncio.sleep(0.1)
    cpu, wall = own_cpu_seconds() - cpu, time.perf_counter() - wall
    for sub in subs:
        sub.close()
        sub.parse()
    expected = list(range(2, 2 + total))
    conn.send(
        {
            "complete": sum(1 for s in subs if s.seqs == expected),
            "refused": Counter(s.refused.decode() for s in subs if s.refused),
            "received": sum(len(s.seqs) for s in subs),
            "last_receipt": max((s.last_receipt for s in subs), default=0.0),
            "latencies": Counter(max(0, int(x * BUCKET)) for s in subs for x in s.latencies),
            "from_store": Counter(max(0, int(x * BUCKET)) for s in subs for x in s.from_store),
            "cpu": cpu / wall if wall > 0 else 0.0,
        }
    )
    conn.close()


WRITER = """
import asyncio, json, sys, time, aiohttp
base, session, total, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
async def main():
    # Open loop: an event is offered every 1/rate s whether or not earlier POSTs have answered.
    took = []
    async with aiohttp.ClientSession() as http:
        async def post(i):
            tick = {"type": "custom", "name": "tick", "data": {"t": time.time(), "i": i}}
            body = {"events": [tick]}
            sent = time.perf_counter()
            async with http.post(f"{base}/v1/sessions/{session}/events", json=body) as r:
                assert r.status == 200
            took.append(time.perf_counter() - sent)
        began = time.time()
        started = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(i)))
        offered = total / (time.perf_counter() - started)
        await asyncio.gather(*tasks)
        took.sort()
        post_p99 = took[min(len(took) - 1, int(len(took) * 0.99))] * 1000
        print(json.dumps({"offered": offered, "began": began, "post_p99": post_p99}))
asyncio.run(main())
"""


def pct(counts: Counter[int], p: float) -> float:
    """The p-quantile of the 0.1 ms buckets, in ms."""
    total = sum(counts.values())
    if not total:
        return float("nan")
    rank = min(total - 1, int(total * p))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen > rank:
            return bucket * 1000 / BUCKET
    raise AssertionError("unreachable")


async def one_run(
    server: ServerProcess,
    subscribers: int,
    seconds: float,
    rate: int,
    *,
    clients: int,
    drain: float,
    measure_memory: bool = True,
    batch_clients: bool = False,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        session = "fan-" + uuid.uuid4().hex[:6]
        async with http.post(f"{server.url}/v1/sessions", json={"id": session}) as r:
            assert r.status == 201
    request = (
        f"GET /v1/sessions/{session}/events?offset=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    pids = process_tree(server.proc.pid)  # type: ignore[union-attr]

    # Memory: one warm subscriber first (in this process), then N idle ones.
    warm = (await connect_all(server.port, request, 1))[0]
    await asyncio.sleep(1.0)
    before = rss_kib(pids)
    spawn = multiprocessing.get_context("spawn")  # not fork: this process runs an event loop
    pipes: list[Connection] = []
    procs = []
    for k in range(clients):
        count = subscribers // clients + (1 if k < subscribers % clients else 0)
        here, there = spawn.Pipe()
        proc = spawn.Process(
            target=client_process,
            args=(there, server.port, request, count, batch_clients),
            daemon=True,
        )
        proc.start()
        pipes.append(here)
        procs.append(proc)

    async def recv(pipe: Connection) -> Any:
        return await loop.run_in_executor(None, pipe.recv)

    spread: Counter[int] = Counter()
    for got in await asyncio.gather(*(recv(p) for p in pipes)):
        spread += got
    await asyncio.sleep(2.0)
    per_subscriber_kb = (
        (rss_kib(pids) - before) * 1024 / subscribers / 1000 if measure_memory else 0
    )

    # Live: a writer process appends `rate` events/s through the HTTP API.
    total = int(seconds * rate)
    for pipe in pipes:
        pipe.send("start")
    (user, system), waited, wall = cpu_seconds(pids), runnable_seconds(pids), time.perf_counter()
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        server.url,
        session,
        str(total),
        str(rate),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await writer.communicate()
    wrote = json.loads(out.decode())
    for pipe in pipes:
        pipe.send((total, time.time() + drain))
    results = await asyncio.gather(*(recv(p) for p in pipes))
    user_after, system_after = cpu_seconds(pids)
    user, system = user_after - user, system_after - system
    server_cpu, wall = user + system, time.perf_counter() - wall
    waited = runnable_seconds(pids) - waited
    for proc in procs:
        await loop.run_in_executor(None, proc.join)
    warm.close()
    refused = sum((got["refused"] for got in results), Counter())
    if refused:  # why, from the server's own log
        said = [
            line
            for line in server.log.read_text().splitlines()
            if any(word in line for word in ('"WARNING"', '"ERROR"', " 503 ", " 429 "))
        ]
        print("\n".join(said[-5:]), file=sys.stderr)
    latencies: Counter[int] = Counter()
    from_store: Counter[int] = Counter()
    for got in results:
        latencies += got["latencies"]
        from_store += got["from_store"]
    received = sum(got["received"] for got in results)
    last_receipt = max(got["last_receipt"] for got in results)
    return {
        "subscribers": subscribers,
        "writer_rate": wrote["offered"],
        "post_p99": wrote["post_p99"],
        "complete": sum(got["complete"] for got in results),
        "refused": refused,
        "delivered": received / (total * subscribers),
        # Events each subscriber received, per second from the writer's start to the last receipt.
        "delivered_rate": received / subscribers / max(1e-9, last_receipt - wrote["began"]),
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "store_p99": pct(from_store, 0.99),
        "kb_per_idle": per_subscriber_kb,
        "spread": " / ".join(f"{spread[w]:,}" for w in sorted(spread)),
        "server_cpu": server_cpu / wall,
        "server_waited": waited / wall,
        "us_per_delivery": server_cpu * 1e6 / max(1, received),
        "kernel_share": system / server_cpu if server_cpu > 0 else 0.0,
        "client_cpu": max(got["cpu"] for got in results),
    }


def completeness(r: dict[str, Any], n: int) -> str:
    refused = "".join(f" ({n:,} refused: {status})" for status, n in r["refused"].items())
    return f"{r['complete']:,}/{n:,}{refused}"


def start_server(tmp: Path, url: str, workers: int, subscribers: int) -> ServerProcess:
    env = {
        "AGENTLOG_DATABASE_URL": url,
        "AGENTLOG_WORKERS": str(workers),
        # The default (4,000 streams a process) holds 2,000 subscribers on one worker; above
        # 2,000 the kernel's spread over workers is not even, so each may have to take them
        # all. (Set for code before the default was raised from 1,000 too.)
        "AGENTLOG_MAX_SSE_CONNECTIONS": str(max(4000, 2 * subscribers)),
    }
    return ServerProcess(tmp, env).start()


async def subscriber_table(args: argparse.Namespace, tmp: Path, url: str, workers: int) -> None:
    print(
        "| subscribers | events/s offered | subscribers with all events, once, in order "
        "| delivered | p50 ms | p99 ms | p99 ms from the store's stamp "
        "| KB per idle subscriber | writer POST p99 ms "
        "| server CPU | server waiting for a core | µs server CPU per delivery (in the kernel) "
        "| client CPU | subscribers per worker |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.subscribers:
        server = start_server(tmp, url, workers, n)
        try:
            r = await one_run(
                server,
                n,
                args.seconds,
                args.rate,
                clients=args.clients,
                drain=args.drain,
                batch_clients=args.batch_clients,
            )
        finally:
            server.stop()
        print(
            f"| {n:,} | {r['writer_rate']:.1f} | {completeness(r, n)} "
            f"| {r['delivered']:.1%} | {r['p50']:.1f} | {r['p99']:.1f} | {r['store_p99']:.1f} "
            f"| {r['kb_per_idle']:.1f} | {r['post_p99']:.1f} | {r['server_cpu']:.0%} "
            f"| {r['server_waited']:.0%} | {r['us_per_delivery']:.1f} ({r['kernel_share']:.0%}) "
            f"| {r['client_cpu']:.0%} | {r['spread']} |",
            flush=True,
        )


async def sweep(args: argparse.Namespace, tmp: Path, url: str, workers: int) -> None:
    n = args.sweep_subscribers
    print(
        "| events/s offered | events/s delivered | subscribers with all events, once, in order "
        "| p50 ms | p99 ms | p99 ms from the store's stamp | writer POST p99 ms | server CPU "
        "| server waiting for a core | µs server CPU per delivery (in the kernel) "
        "| client CPU | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    server = start_server(tmp, url, workers, n)
    try:
        held = None
        for rate in args.rates:
            r = await one_run(
                server,
                n,
                args.seconds,
                rate,
                clients=args.clients,
                drain=args.drain,
                measure_memory=False,
                batch_clients=args.batch_clients,
            )
            broke = []
            if r["complete"] < n:
                broke.append(f"{n - r['complete']:,} subscribers short")
            if not r["p99"] <= args.break_p99:
                broke.append(f"p99 > {args.break_p99:g} ms")
            verdict = "breaks: " + ", ".join(broke) if broke else "holds"
            print(
                f"| {r['writer_rate']:.1f} | {r['delivered_rate']:.1f} | {completeness(r, n)} "
                f"| {r['p50']:.1f} | {r['p99']:.1f} | {r['store_p99']:.1f} | {r['post_p99']:.1f} "
                f"| {r['server_cpu']:.0%} | {r['server_waited']:.0%} "
                f"| {r['us_per_delivery']:.1f} ({r['kernel_share']:.0%}) "
                f"| {r['client_cpu']:.0%} "
                f"| {verdict} |",
                flush=True,
            )
            if broke:
                holds = f"holds up to {held} events/s" if held is not None else "holds no rate"
                print(f"\n{workers} worker(s), {n:,} subscribers: {holds}, breaks at {rate}.")
                return
            held = rate
        print(f"\n{workers} worker(s), {n:,} subscribers: held every rate up to {held}.")
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument(
        "--workers", type=int, nargs="+", help="worker counts to run (PostgreSQL only)"
    )
    parser.add_argument("--clients", type=int, default=2, help="subscriber client processes")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds after the writer")
    parser.add_argument(
        "--batch-clients",
        action="store_true",
        help="run the subscriber processes SCHED_BATCH: they no longer preempt the server",
    )
    parser.add_argument("--sweep", action="store_true", help="raise the rate until it breaks")
    parser.add_argument("--sweep-subscribers", type=int, default=2000)
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 100, 200, 400, 800])
    parser.add_argument("--break-p99", type=float, default=1000.0, help="ms")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "AGENTLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        help="AGENTLOG_EVENT_LOOP for the servers (default: the server's default)",
    )
    args = parser.parse_args()
    if args.loop is not None:
        os.environ["AGENTLOG_EVENT_LOOP"] = args.loop  # the servers inherit it (ServerProcess)
    if args.sqlite and args.workers and max(args.workers) > 1:
        parser.error("--workers above 1 needs PostgreSQL: one process serves a SQLite file")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # children inherit it
    schema = "bench_" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/fan.db" if args.sqlite else f"{args.postgres}?schema={schema}"
        try:
            for workers in args.workers or [1]:
                if args.workers:
                    print(f"\n{workers} worker(s), load {os.getloadavg()[0]:.1f}\n", flush=True)
                if args.sweep:
                    await sweep(args, Path(tmp), url, workers)
                else:
                    await subscriber_table(args, Path(tmp), url, workers)
        finally:
            if not args.sqlite:
                conn = await asyncpg.connect(args.postgres)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
