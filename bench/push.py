"""The live push alone: the server's CPU per subscriber for one new event, user and kernel.

    .venv/bin/python bench/push.py [--subscribers 2000] [--events 300] [--loop auto|uvloop|asyncio]

One session's tail (transport/streaming/session_feed.py) with N caught-up subscribers on real
loopback connections, read by another process that drains them, and one event pushed every
10 ms. Prints the push's CPU per subscriber (this thread's `thread_time`), split into user
(Python: the push loop and asyncio's `transport.write`) and system (the socket send, which on
loopback also runs the receiver's TCP input and wakes it), from `getrusage(RUSAGE_THREAD)`.
No database, no HTTP request, no client parsing: what is left is the fan-out's own floor.
`--loop` picks the event loop as AGENTLOG_EVENT_LOOP does for `serve` (default: asyncio's).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import selectors
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentlog.infra.local.wakeups import Waiter
from agentlog.transport.event_loop import choose_event_loop
from agentlog.transport.streaming.session_feed import SessionTail

FRAME = b'id: 1\nevent: custom\ndata: {"type":"custom","data":"' + b"x" * 200 + b'"}\n\n'


def drain(port: int, count: int) -> None:
    """The subscribers: `count` connections read as fast as the bytes come, until closed."""
    selector = selectors.DefaultSelector()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select(1):
            try:
                if not key.fileobj.recv(65536):  # type: ignore[union-attr]
                    return
            except OSError:
                return


class Accepted(asyncio.Protocol):
    def __init__(self, transports: list[asyncio.WriteTransport]) -> None:
        self.transports = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transports.append(transport)  # type: ignore[arg-type]


async def run(subscribers: int, events: int) -> None:
    loop = asyncio.get_running_loop()
    transports: list[asyncio.WriteTransport] = []
    server = await loop.create_server(lambda: Accepted(transports), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = multiprocessing.get_context("spawn").Process(
        target=drain, args=(port, subscribers), daemon=True
    )
    reader.start()
    while len(transports) < subscribers:
        await asyncio.sleep(0.05)
    tail = SessionTail(None, "bench", 2.0)  # type: ignore[arg-type]  # the store is never read
    for transport in transports:
        tail.attach(transport, 0, Waiter())
    cpu = user = system = 0.0
    for seq in range(1, events + 1):
        tail._keep(seq, FRAME)
        tail.head = seq
        before, started = resource.getrusage(resource.RUSAGE_THREAD), time.thread_time()
        tail._push()
        cpu += time.thread_time() - started
        after = resource.getrusage(resource.RUSAGE_THREAD)
        user += after.ru_utime - before.ru_utime
        system += after.ru_stime - before.ru_stime
        await asyncio.sleep(0.01)
    per = 1e6 / events / subscribers
    print(
        f"| {subscribers:,} | {cpu * 1e3 / events:.2f} | {cpu * per:.2f} | {user * per:.2f} "
        f"| {system * per:.2f} | {os.getloadavg()[0]:.1f} |"
    )
    for transport in transports:
        transport.close()
    server.close()
    reader.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[2000])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="asyncio")
    args = parser.parse_args()
    loop = choose_event_loop(args.loop)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    print(f"event loop {loop.name}")
    print("| subscribers | push CPU ms | µs per subscriber | of it user | of it kernel | load |")
    print("|---|---|---|---|---|---|")
    for n in args.subscribers:
        with asyncio.Runner(loop_factory=loop.new_loop) as runner:
            runner.run(run(n, args.events))


if __name__ == "__main__":
    main()
