"""SSE fan-out: N subscribers on one `agentlog serve` process follow one live session while a
writer appends 50 events/s through the HTTP API.

    .venv/bin/python bench/fanout.py [--subscribers 100 1000 2000] [--seconds 10] [--sqlite]

Prints, per N: events delivered (all, once, in order, for every subscriber), append-to-receipt
latency p50/p99 (from the writer's POST to the subscriber's receipt of the frame), and server
memory per idle subscriber (RSS growth with N idle subscribers connected / N). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp
import asyncpg

from tests.support.server import ServerProcess

FRAME = re.compile(rb'id: (\d+)\n[^\n]*\ndata: [^\n]*?"data":\{"t":([0-9.]+)')


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Subscriber(asyncio.Protocol):
    """A deliberately cheap SSE client: a bare protocol that scans bytes as they arrive, so the
    bench process can hold thousands of connections without becoming the bottleneck."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.seqs: list[int] = []
        self.latencies: list[float] = []
        self.connected = asyncio.Event()
        self.buffer = b""
        self.headers_done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.headers_done:
            if b"\r\n\r\n" not in self.buffer:
                return
            self.headers_done = True
            self.connected.set()
        cut = self.buffer.rfind(b"\n\n")
        if cut < 0:
            return
        complete, self.buffer = self.buffer[: cut + 2], self.buffer[cut + 2 :]
        for seq, sent in FRAME.findall(complete):
            self.seqs.append(int(seq))
            self.latencies.append(now - float(sent))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


WRITER = """
import asyncio, sys, time, aiohttp
base, session, total, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
async def main():
    # Open loop: an event is offered every 1/rate s whether or not earlier POSTs have answered.
    async with aiohttp.ClientSession() as http:
        async def post(i):
            tick = {"type": "custom", "name": "tick", "data": {"t": time.time(), "i": i}}
            body = {"events": [tick]}
            async with http.post(f"{base}/v1/sessions/{session}/events", json=body) as r:
                assert r.status == 200
        started = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(i)))
        offered = total / (time.perf_counter() - started)
        await asyncio.gather(*tasks)
        print(offered)
asyncio.run(main())
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else float("nan")


async def one_run(
    server: ServerProcess, subscribers: int, seconds: float, rate: int
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        session = "fan-" + uuid.uuid4().hex[:6]
        async with http.post(f"{server.url}/v1/sessions", json={"id": session}) as r:
            assert r.status == 201
    request = (
        f"GET /v1/sessions/{session}/events?offset=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()

    async def connect() -> Subscriber:
        _, sub = await loop.create_connection(lambda: Subscriber(request), "127.0.0.1", server.port)
        await sub.connected.wait()
        return sub

    # Memory: one warm subscriber first, then N idle ones.
    warm = await connect()
    await asyncio.sleep(1.0)
    before = rss_kib(server.proc.pid)  # type: ignore[union-attr]
    subs: list[Subscriber] = []
    for i in range(0, subscribers, 100):
        subs += await asyncio.gather(*(connect() for _ in range(min(100, subscribers - i))))
    await asyncio.sleep(2.0)
    after = rss_kib(server.proc.pid)  # type: ignore[union-attr]
    per_subscriber_kb = (after - before) * 1024 / subscribers / 1000

    # Live: a writer process appends `rate` events/s through the HTTP API.
    total = int(seconds * rate)
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
    writer_rate = float(out.decode().strip())
    expected = list(range(2, 2 + total))
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and any(len(s.seqs) < total for s in subs):
        await asyncio.sleep(0.2)
    for sub in [warm, *subs]:
        sub.close()
    complete = sum(1 for s in subs if s.seqs == expected)
    latencies = [x for s in subs for x in s.latencies]
    return {
        "subscribers": subscribers,
        "writer_rate": writer_rate,
        "complete": complete,
        "delivered": sum(len(s.seqs) for s in subs) / (total * subscribers),
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "kb_per_idle": per_subscriber_kb,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "AGENTLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # the server inherits it
    schema = "bench_" + uuid.uuid4().hex[:8]
    print(
        "| subscribers | events/s offered | subscribers with all events, once, in order "
        "| delivered | p50 ms | p99 ms | KB per idle subscriber |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/fan.db" if args.sqlite else f"{args.postgres}?schema={schema}"
        try:
            for n in args.subscribers:
                server = ServerProcess(Path(tmp), {"AGENTLOG_DATABASE_URL": url}).start()
                try:
                    r = await one_run(server, n, args.seconds, args.rate)
                finally:
                    server.stop()
                print(
                    f"| {n:,} | {r['writer_rate']:.1f} | {r['complete']:,}/{n:,} "
                    f"| {r['delivered']:.1%} | {r['p50']:.1f} | {r['p99']:.1f} "
                    f"| {r['kb_per_idle']:.1f} |",
                    flush=True,
                )
        finally:
            if not args.sqlite:
                conn = await asyncpg.connect(args.postgres)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
