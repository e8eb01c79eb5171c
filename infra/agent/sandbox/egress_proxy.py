"""A run's only way to the network beyond the model: an HTTP proxy in the server process that
opens connections to the hosts the agent names (`AGENTLOG_AGENT_EGRESS`) and to nothing else.

The sandbox has no network; a relay inside it hands each connection to this proxy's unix
socket, and the CLI and its tools find it through `HTTPS_PROXY`/`HTTP_PROXY`. Two request
forms are served, one request per connection:

- `CONNECT host:port` (HTTPS, or any TCP): `200` and then bytes both ways, end to end (the
  proxy never sees inside TLS);
- an absolute-form request (`GET http://host:port/path`): sent on to the host in origin form.

Either way the destination is fixed when the connection opens, so a client cannot reach a
second host over it. A host not listed gets `403` and is reported (`on_refused`), which the
runner records as `egress_refused`. A name is checked as the client gave it, not as it
resolves: an allowed name whose DNS points inside the operator's network is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from agentlog.infra.agent.sandbox.socket_paths import bindable

log = logging.getLogger(__name__)

# The longest request head the proxy reads (request line and headers).
MAX_HEAD_BYTES = 64 * 1024


def parse_hosts(text: str | None) -> tuple[str, ...]:
    """`AGENTLOG_AGENT_EGRESS`: `host` or `host:port`, comma-separated; raises ValueError."""
    hosts: list[str] = []
    for raw in (text or "").replace(";", ",").split(","):
        item = raw.strip().lower()
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        if not host or any(c in host for c in "/@ ") or (port and not port.isdigit()):
            raise ValueError(f"{raw.strip()!r} is not a host or host:port (e.g. api.github.com)")
        hosts.append(item)
    return tuple(dict.fromkeys(hosts))


def host_allowed(host: str, port: int, allowed: Iterable[str]) -> bool:
    """Whether `host:port` is listed: by name and port, or by name alone (any port)."""
    host = host.lower().rstrip(".")
    return any(entry in (host, f"{host}:{port}") for entry in allowed)


class EgressProxy:
    """One run's proxy on a unix socket; `on_refused(host, port, why)` hears each refusal."""

    def __init__(self, allowed: Iterable[str], on_refused: Callable[[str, int, str], None]) -> None:
        self.allowed = tuple(allowed)
        self.on_refused = on_refused
        self.socket_path: Path | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, socket_path: Path) -> None:
        with bindable(socket_path) as name:
            self._server = await asyncio.start_unix_server(self._serve, path=name)
        os.chmod(socket_path, 0o600)  # the server's own user only
        self.socket_path = socket_path

    def close(self) -> None:
        """Stop accepting and drop what is open (the run is over)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        if self.socket_path is not None:
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._proxy(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD_BYTES:
            return await _answer(writer, 431, "request head too large")
        line, _, rest = head.partition(b"\r\n")
        method, target, version = line.decode("latin-1").split(" ", 2)
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port = int(port_text) if port_text.isdigit() else 0
            first = b""
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                return await _answer(writer, 400, "the proxy takes CONNECT or an http:// URL")
            host, port = url.hostname, url.port or 80
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            headers = [
                h
                for h in rest.split(b"\r\n")
                if h and not h.lower().startswith((b"proxy-", b"connection:"))
            ]
            first = b"\r\n".join(
                [f"{method} {path} {version}".encode("latin-1"), *headers, b"Connection: close"]
            )
            first += b"\r\n\r\n"
        host = host.strip("[]")
        if not host or not 0 < port < 65536:
            return await _answer(writer, 400, "no host:port to connect to")
        if not host_allowed(host, port, self.allowed):
            why = f"{host}:{port} is not a host this agent may reach (AGENTLOG_AGENT_EGRESS)"
            log.warning("egress proxy: refused %s:%s", host, port)
            self.on_refused(host, port, why)
            return await _answer(writer, 403, why)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=30
            )
        except (OSError, TimeoutError) as exc:
            return await _answer(writer, 502, f"{host}:{port} did not answer: {type(exc).__name__}")
        try:
            if first:
                upstream_writer.write(first)
            else:
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _answer(writer: asyncio.StreamWriter, status: int, why: str) -> None:
    body = why.encode() + b"\n"
    reason = {400: "Bad Request", 403: "Forbidden", 431: "Too Large", 502: "Bad Gateway"}
    writer.write(
        f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
