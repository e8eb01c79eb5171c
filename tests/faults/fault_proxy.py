"""A TCP proxy that injects network faults between agentlog and a server (PostgreSQL, Redis).

Modes, switched at any time from the test's thread:
- `pass_through()`: forward bytes both ways;
- `delay(seconds)`: forward each chunk after a pause (a slow network);
- `black_hole()`: keep every socket open and forward nothing. Bytes that arrive are dropped,
  and a connection that dropped bytes stays silent for good, even after `pass_through()`:
  that is a half-open connection (failover, a NAT that lost its state, a paused VM). New
  connections are accepted and then hear nothing;
- `cut()`: close every open connection at once (a reset), whatever the mode;
- `cut_when_sent(pattern, forward=...)`: once, when the client sends bytes containing
  `pattern`, reset that connection, after (`forward=True`) or instead of forwarding them: the
  server did, or did not, get the statement, and the client never hears the answer.

It runs its own event loop on a thread, so a test that blocks its own loop (or a server
process under test) cannot stall the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side and the server's side."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    silenced: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """`FaultProxy(host, port).start()` listens on 127.0.0.1:`proxy.port`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = "pass"
        self.delay_seconds = 0.0
        self.connections_accepted = 0
        self.trigger: tuple[bytes, bool] | None = None
        self.triggered = 0
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def pass_through(self) -> None:
        self._set("pass")

    def delay(self, seconds: float) -> None:
        self.delay_seconds = seconds
        self._set("delay")

    def black_hole(self) -> None:
        self._set("black_hole")

    def cut(self) -> None:
        """Reset every open connection (new ones are served in the current mode)."""

        async def cut_all() -> None:
            for link in list(self._links):
                link.abort()
            self._links.clear()

        self._call(cut_all())

    def cut_when_sent(self, pattern: bytes, *, forward: bool) -> None:
        async def arm() -> None:
            self.trigger = (pattern, forward)

        self._call(arm())

    @property
    def open_connections(self) -> int:
        return len(self._links)

    # -- on the proxy's loop ------------------------------------------------------------------

    def _set(self, mode: str) -> None:
        async def switch() -> None:
            self.mode = mode

        self._call(switch())

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> asyncio.Server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        return await asyncio.start_server(self._accept, sock=sock)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        link = _Link(client=writer)
        self._links.add(link)
        try:
            if self.mode == "black_hole":
                # The server "accepted" and then went silent: swallow whatever the client sends.
                link.silenced = True
                with contextlib.suppress(OSError):
                    while await reader.read(CHUNK):
                        pass
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return  # the server is down: the client sees its connection closed
            link.server = up_writer
            link.tasks = [
                asyncio.ensure_future(self._pump(link, reader, up_writer, from_client=True)),
                asyncio.ensure_future(self._pump(link, up_reader, writer, from_client=False)),
            ]
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump(
        self,
        link: _Link,
        source: asyncio.StreamReader,
        target: asyncio.StreamWriter,
        *,
        from_client: bool,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await source.read(CHUNK)
                if not data:
                    return
                if self.mode == "black_hole":
                    link.silenced = True
                if link.silenced:
                    continue  # dropped: this connection never speaks again
                if self.mode == "delay":
                    await asyncio.sleep(self.delay_seconds)
                trigger = self.trigger
                if from_client and trigger is not None and trigger[0] in data:
                    self.trigger = None
                    self.triggered += 1
                    link.silenced = True  # the client never hears the answer
                    if trigger[1]:
                        target.write(data)
                        await target.drain()
                        await asyncio.sleep(0.2)  # let the server act on it
                    link.abort()
                    return
                target.write(data)
                await target.drain()
