"""Shared fixtures: real PostgreSQL and Redis (a fresh schema per test), and stores.

With CI=true a missing server fails the test; on a laptop without them the test is skipped.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store

POSTGRES_URL = os.environ.get(
    "AGENTLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENTLOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

ROOT = Path(__file__).resolve().parent.parent

# AGENTLOG_TEST_EVENT_LOOP=uvloop runs the in-process tests (pytest-asyncio's and
# pytest-aiohttp's loops) on uvloop; a real `agentlog serve` takes AGENTLOG_EVENT_LOOP instead.
if os.environ.get("AGENTLOG_TEST_EVENT_LOOP") == "uvloop":
    import uvloop

    def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
        return {"uvloop": uvloop.new_event_loop}


def _missing(what: str, why: object) -> None:
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(message + "; CI=true requires it", pytrace=False)
    pytest.skip(message)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@asynccontextmanager
async def new_postgres_database(tmp_path: Path) -> AsyncIterator[str]:
    """A PostgreSQL URL whose `schema` is new, dropped on exit."""
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        conn = await asyncpg.connect(POSTGRES_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        _missing("PostgreSQL", exc)
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        await _drop_schema(conn, schema)
        await conn.close()


@asynccontextmanager
async def new_sqlite_database(tmp_path: Path) -> AsyncIterator[str]:
    """A SQLite URL of a file not made yet, in the test's own directory (removed with it)."""
    yield f"sqlite:///{tmp_path / ('agentlog-' + uuid.uuid4().hex[:12] + '.db')}"


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    """A PostgreSQL URL whose `schema` is fresh for this test and dropped after it."""
    async with new_postgres_database(tmp_path) as url:
        yield url


async def _drop_schema(conn: asyncpg.Connection, schema: str) -> None:
    """Drop the test's schema without ever hanging: a server process a test left running can
    hold locks on it (a projector's claim), so wait briefly, then end only the backends that
    hold a lock on a relation of *this* schema and try again. Other test runs on the shared
    database (another checkout, CI beside a session) are never touched."""
    await conn.execute("SET lock_timeout = '5s'")
    for _ in range(3):
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        except asyncpg.LockNotAvailableError:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM ("
                " SELECT DISTINCT l.pid FROM pg_locks l"
                " JOIN pg_class c ON c.oid = l.relation"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()) AS holders",
                schema,
            )
    raise RuntimeError(f"could not drop test schema {schema}")


@pytest.fixture
def redis_url() -> str:
    if not _reachable("127.0.0.1", 6379):
        _missing("Redis", "nothing listens on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agentlog.db'}"


StoreOpener = Callable[[], AbstractAsyncContextManager[StoreBase]]

# Every database by name: how a test gets an empty one of its own (removed after the test).
DATABASES: dict[str, Callable[[Path], AbstractAsyncContextManager[str]]] = {
    "sqlite": new_sqlite_database,
    "postgres": new_postgres_database,
}

# Every backend, by name: a database of DATABASES, and `+redis` when Redis carries the
# wake-ups and the run lock beside it. A new backend is one more name here (and its database
# one more entry above); no test names it.
BACKENDS = ["sqlite", "postgres", "postgres+redis"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def database_of(backend: str) -> Callable[[Path], AbstractAsyncContextManager[str]]:
    """How to make an empty database for the backend named `backend`."""
    return DATABASES[backend.partition("+")[0]]


def redis_url_of(backend: str, request: pytest.FixtureRequest) -> str | None:
    return str(request.getfixturevalue("redis_url")) if backend.endswith("+redis") else None


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    async with database_of(backend)(tmp_path) as url:
        yield url


@pytest.fixture
def backend_redis_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    return redis_url_of(backend, request)


@pytest.fixture
def open_test_store(database_url: str, backend_redis_url: str | None) -> StoreOpener:
    """Opens a new store instance on the test's database (another 'server' each call)."""

    def opener() -> AbstractAsyncContextManager[StoreBase]:
        return open_store(database_url, redis_url=backend_redis_url)

    return opener


@pytest.fixture
async def store(open_test_store: StoreOpener) -> AsyncIterator[StoreBase]:
    async with open_test_store() as opened:
        yield opened
