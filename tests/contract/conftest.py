"""The one fixture every contract suite runs under: each port's contract, once per backend.

`backend` is the Backend (agentlog.infra.store.backend) of a store opened on the test's fresh
database; `backend_name` is which one, from tests.conftest.BACKENDS. The root fixtures
(`store`, `open_test_store`, `database_url`) follow the same parameter here.
"""

from __future__ import annotations

import pytest
from agentlog.infra.store.backend import Backend
from agentlog.infra.store.base import StoreBase

from tests.conftest import BACKENDS, redis_url_of, url_of


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend_name: str, request: pytest.FixtureRequest) -> str:
    return url_of(backend_name, request)


@pytest.fixture
def backend_redis_url(backend_name: str, request: pytest.FixtureRequest) -> str | None:
    return redis_url_of(backend_name, request)


@pytest.fixture
def backend(store: StoreBase) -> Backend:
    return store.backend
