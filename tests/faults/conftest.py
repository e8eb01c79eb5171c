"""The fault tier's fixtures: private servers and fault proxies, each stopped by pid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _missing
from tests.faults.fault_proxy import FaultProxy
from tests.faults.servers import (
    PrivatePostgres,
    PrivateRedis,
    postgres_available,
    redis_available,
)
from tests.support.server import ServerProcess


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not postgres_available():
        _missing("initdb / pg_ctl", "not installed")
    server = PrivatePostgres()
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if not redis_available():
        _missing("redis-server", "not installed")
    server = PrivateRedis()
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.fixture
def proxies() -> Iterator[list[FaultProxy]]:
    started: list[FaultProxy] = []
    try:
        yield started
    finally:
        for proxy in started:
            proxy.stop()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """`agentlog serve` processes a test starts; each is stopped (by its pid) afterwards."""
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.kill()


def start_server(
    servers: list[ServerProcess], tmp_path: Path, env: dict[str, str]
) -> ServerProcess:
    server = ServerProcess(tmp_path, env)
    servers.append(server)
    return server.start()
