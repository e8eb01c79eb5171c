"""The egress proxy checks where a name leads, not only how it is spelled: a listed name that
resolves to a loopback, private or link-local address is refused (DNS rebinding, names like
`localtest.me`), unless the operator named that address or `localhost` itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agentlog.infra.agent.sandbox.egress_proxy import EgressProxy, non_public_addresses

SECRET = "an internal service answers 3f1a"


@pytest.fixture
async def internal_port() -> AsyncIterator[int]:
    """A service on loopback: what a rebinding name would lead a tool to."""
    app = web.Application()

    async def secret(_: web.Request) -> web.Response:
        return web.Response(text=SECRET)

    app.router.add_get("/", secret)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def ask(socket_path: Path, request: str) -> str:
    """One request through the proxy's unix socket, as the sandbox's relay sends it."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(request.encode())
    await writer.drain()
    async with asyncio.timeout(30):
        answer = await reader.read()
    writer.close()
    return answer.decode(errors="replace")


async def test_a_listed_name_that_resolves_to_loopback_is_refused(
    tmp_path: Path, internal_port: int
) -> None:
    # 2130706433 and 127.1 are names to the listing (not address literals), and both resolve
    # to 127.0.0.1: the same as a public name whose DNS answers with an internal address.
    refused: list[tuple[str, int, str]] = []
    names = ("2130706433", "127.1")
    proxy = EgressProxy(
        [f"{name}:{internal_port}" for name in names],
        lambda host, port, why: refused.append((host, port, why)),
    )
    await proxy.start(tmp_path / "egress.sock")
    try:
        for name in names:
            plain = await ask(
                tmp_path / "egress.sock",
                f"GET http://{name}:{internal_port}/ HTTP/1.1\r\nHost: {name}\r\n\r\n",
            )
            assert plain.startswith("HTTP/1.1 403"), plain
            assert SECRET not in plain
            tunnel = await ask(
                tmp_path / "egress.sock", f"CONNECT {name}:{internal_port} HTTP/1.1\r\n\r\n"
            )
            assert tunnel.startswith("HTTP/1.1 403"), tunnel
    finally:
        proxy.close()
    assert [(host, port) for host, port, _ in refused] == [
        (name, internal_port) for name in names for _ in range(2)
    ]
    assert all("127.0.0.1" in why and "not a public address" in why for *_, why in refused)


async def test_an_address_or_localhost_named_by_the_operator_is_reached(
    tmp_path: Path, internal_port: int
) -> None:
    refused: list[tuple[str, int, str]] = []
    proxy = EgressProxy(
        [f"127.0.0.1:{internal_port}", f"localhost:{internal_port}"],
        lambda host, port, why: refused.append((host, port, why)),
    )
    await proxy.start(tmp_path / "egress.sock")
    try:
        for name in ("127.0.0.1", "localhost"):
            answer = await ask(
                tmp_path / "egress.sock",
                f"GET http://{name}:{internal_port}/ HTTP/1.1\r\nHost: {name}\r\n\r\n",
            )
            assert answer.startswith("HTTP/1.1 200") and SECRET in answer, answer
    finally:
        proxy.close()
    assert refused == []


def test_only_global_addresses_are_public() -> None:
    inside = [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ]
    assert non_public_addresses(inside) == inside
    assert non_public_addresses(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]) == []
