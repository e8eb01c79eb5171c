"""Inside the sandbox, the model's address as the CLI knows it: a TCP listener on loopback that
relays each connection to the model gateway's unix socket (bound into the sandbox, which has no
other network). It replaces socat, so no system package is needed.

It runs under `python3 -IS` (no site, no environment), so it imports only the standard library.
Arguments: PORT SOCKET.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close, so the other side sees the end too."""
    with contextlib.suppress(OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def relay(
    socket_path: str, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
) -> None:
    try:
        model_reader, model_writer = await asyncio.open_unix_connection(socket_path)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(pump(client_reader, model_writer), pump(model_reader, client_writer))
    finally:
        for writer in (client_writer, model_writer):
            writer.close()


async def serve(port: int, socket_path: str) -> None:
    server = await asyncio.start_server(
        lambda r, w: relay(socket_path, r, w), "127.0.0.1", port, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: model_relay.py PORT SOCKET")
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))


if __name__ == "__main__":
    main()
