"""The fault tier's fixtures: private servers and fault proxies, each stopped by pid.

After every fault test, `agentlog verify` runs on each database the test used (its private
PostgreSQL, every SQLite file under its tmp_path), and a violation fails the test: whatever a
fault did to the clients, the log itself must stay consistent.
"""

from __future__ import annotations

import os
import subprocess
import sys
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

AGENTLOG = Path(sys.executable).with_name("agentlog")


def verify_database(url: str, cwd: Path) -> None:
    """`agentlog verify` on the database at `url`; fails the test on any problem it reports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTLOG_")}
    done = subprocess.run(
        [str(AGENTLOG), "verify"],
        cwd=cwd,
        env={**env, "AGENTLOG_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(
            f"agentlog verify on {url} after the fault test (exit {done.returncode}):\n"
            f"{done.stdout[-4000:]}{done.stderr[-2000:]}"
        )


@pytest.fixture(autouse=True)
def verify_sqlite_files(tmp_path: Path) -> Iterator[None]:
    """Every SQLite database the test left under its tmp_path is verified after it (set up
    first, so torn down after the test's servers are stopped)."""
    yield
    for path in sorted(tmp_path.rglob("*.db")):
        verify_database(f"sqlite:///{path}", tmp_path)


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    if not postgres_available():
        _missing("initdb / pg_ctl", "not installed")
    server = PrivatePostgres()
    try:
        yield server.start()
        # Torn down after the servers the test started on it (requested later): verified
        # once they are gone, on a database that is up (a test may leave it stopped).
        if not server.running():
            server.start()
        verify_database(server.url, tmp_path)
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


def database_env(database: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where a scenario's servers keep their log: `sqlite` (a file under tmp_path), `postgres`
    (this test's private cluster) or `postgres+redis` (and its private Redis for wake-ups)."""
    if database == "sqlite":
        return {"AGENTLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}"}
    postgres: PrivatePostgres = request.getfixturevalue("private_postgres")
    env = {"AGENTLOG_DATABASE_URL": postgres.url}
    if database == "postgres+redis":
        redis: PrivateRedis = request.getfixturevalue("private_redis")
        env["AGENTLOG_REDIS_URL"] = redis.url
    elif database != "postgres":
        raise ValueError(f"no such database for a scenario: {database!r}")
    return env


def start_two_servers(
    database: str, servers: list[ServerProcess], tmp_path: Path, env: dict[str, str]
) -> tuple[ServerProcess, ServerProcess]:
    """The instance a fault hits and the one that must carry on. On PostgreSQL they are two
    processes; a SQLite file has one serving process, so there both are the same server (the
    scenario restarts it after the fault)."""
    first = start_server(servers, tmp_path, env)
    return first, first if database == "sqlite" else start_server(servers, tmp_path, env)
