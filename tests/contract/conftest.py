"""The one fixture every contract suite runs under: each port's contract, once per backend.

`backend` is the Backend (agentlog.infra.store.backend) of a store opened on the test's fresh
database; `backend_name` is which one, from tests.conftest.BACKENDS. The root fixtures
(`store`, `open_test_store`, `database_url`) follow the same parameter here, and
`new_database_url` makes more empty databases of the same kind. A suite asks the backend, never
its name, what it needs to know about the database: a new backend needs no test edits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from agentlog.infra.store.backend import Backend
from agentlog.infra.store.base import StoreBase
from tests.conftest import BACKENDS, database_of, redis_url_of

NewDatabaseUrl = Callable[[], Awaitable[str]]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend_name: str, tmp_path: Path) -> AsyncIterator[str]:
    async with database_of(backend_name)(tmp_path) as url:
        yield url


@pytest.fixture
async def new_database_url(backend_name: str, tmp_path: Path) -> AsyncIterator[NewDatabaseUrl]:
    """Another empty database of the backend's kind at each call, every one removed after the
    test: for suites that need databases of their own beside the test's."""
    async with AsyncExitStack() as made:

        async def new() -> str:
            url: str = await made.enter_async_context(database_of(backend_name)(tmp_path))
            return url

        yield new


@pytest.fixture
def backend_redis_url(backend_name: str, request: pytest.FixtureRequest) -> str | None:
    return redis_url_of(backend_name, request)


@pytest.fixture
def backend(store: StoreBase) -> Backend:
    return store.backend
