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
runner records as `egress_refused`. A listed name is also checked where it leads: it is
resolved once, and refused when any of its addresses is not public (loopback, private,
link-local, shared: DNS rebinding, or a name like `localtest.me`), unless the operator listed
that address itself or `localhost`; the connection goes to the address that was checked, so a
second answer from DNS cannot change where it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
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


def named_explicitly(host: str) -> bool:
    """Whether a listed host says by itself that it is not on the internet: an address literal
    or `localhost` (RFC 6761: always loopback). Any other name must resolve to public addresses."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def non_public_addresses(addresses: Iterable[str]) -> list[str]:
    """Those of `addresses` that are not global unicast: loopback, private, link-local (the
    cloud metadata service), shared, unspecified, multicast; an IPv4-mapped IPv6 address is
    judged as the IPv4 address it carries."""
    found = []
    for text in addresses:
        address = ipaddress.ip_address(text.partition("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            found.append(text)
    return found


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
            return await self._refuse(writer, host, port, why)
        try:
            addresses = await _resolve(host, port)
        except (OSError, TimeoutError) as exc:
            return await _answer(writer, 502, f"{host} did not resolve: {type(exc).__name__}")
        inside = [] if named_explicitly(host) else non_public_addresses(addresses)
        if inside:
            why = (
                f"{host} resolves to {', '.join(inside)}, not a public address; list the "
                "address itself in AGENTLOG_AGENT_EGRESS to reach it"
            )
            return await self._refuse(writer, host, port, why)
        try:
            upstream_reader, upstream_writer = await _connect(addresses, port)
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

    async def _refuse(self, writer: asyncio.StreamWriter, host: str, port: int, why: str) -> None:
        log.warning("egress proxy: refused %s:%s", host, port)
        self.on_refused(host, port, why)
        await _answer(writer, 403, why)


async def _resolve(host: str, port: int) -> list[str]:
    """Every address `host` has now, resolved once: what is checked is what is connected to."""
    infos = await asyncio.wait_for(
        asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=30
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _connect(
    addresses: list[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first of the checked addresses that answers."""
    failure: OSError | TimeoutError = OSError("no address")
    for address in addresses:
        try:
            return await asyncio.wait_for(asyncio.open_connection(address, port), timeout=30)
        except (OSError, TimeoutError) as exc:
            failure = exc
    raise failure


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
