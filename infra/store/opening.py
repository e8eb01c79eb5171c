"""Open what the configured URLs name: the folder of agentlog.infra whose `backend.py` serves
the URL's scheme builds it (see agentlog.infra.store.backend).

Backends are found, not listed: a new database is a new folder with a `backend.py`, and
nothing here changes. Only this module imports them, and none of them imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import cache
from types import ModuleType
from typing import Any

import agentlog.infra
from agentlog.domain.ports.run_lock import RunLock
from agentlog.infra.store.backend import StoreOptions
from agentlog.infra.store.byte_bounded import DEFAULT_CACHE_BYTES
from agentlog.infra.store.database_url import BadDatabaseUrl, DatabaseUrl
from agentlog.infra.store.deployment import deployment_key
from agentlog.infra.store.projection_store import ProjectionStore
from agentlog.infra.store.store import OnBackend, Store


@cache
def _backends() -> dict[str, ModuleType]:
    """URL scheme -> the `backend` module of the folder that serves it."""
    found: dict[str, ModuleType] = {}
    for folder in pkgutil.iter_modules(agentlog.infra.__path__):
        if not folder.ispkg:
            continue
        name = f"agentlog.infra.{folder.name}.backend"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        # store/backend.py is the port itself: it serves no scheme.
        for scheme in getattr(module, "SCHEMES", ()):
            found[scheme] = module
    return found


def backend_for(url: str) -> ModuleType:
    """The backend module serving `url`'s scheme. Raises BadDatabaseUrl."""
    if not url or not isinstance(url, str):
        raise BadDatabaseUrl("database URL is empty")
    scheme, sep, _ = url.partition("://")
    backends = _backends()
    if not sep:
        raise BadDatabaseUrl(
            f"database URL {url!r} has no scheme: use sqlite:///path or postgresql://host/db"
        )
    module = backends.get(scheme.lower())
    if module is None or not hasattr(module, "open_store"):
        raise BadDatabaseUrl(
            f"unsupported database URL scheme {scheme.lower()!r}: use sqlite:///path or "
            "postgresql://host/db"
        )
    return module


def parse_database_url(url: str) -> DatabaseUrl:
    """The URL as the backend serving its scheme reads it (its `parse_url`): e.g.
    `sqlite:///relative.db`, `postgresql://host/db?schema=name`. Raises BadDatabaseUrl."""
    parsed: DatabaseUrl = backend_for(url).parse_url(url)
    return parsed


def driver_failure(exc: BaseException) -> str | None:
    """One line for an operator when `exc` is what a backend's driver raises ("database
    error: ...", "redis error: ..."), else None: a command reports it instead of a traceback."""
    for module in _backends().values():
        if isinstance(exc, getattr(module, "DRIVER_ERRORS", ())):
            return f"{module.SERVICE} error: {exc}"
    return None


def service_outage(exc: BaseException) -> str | None:
    """The service ("redis") that `exc` says is down or unreachable, else None: a request
    that met it answers 503, not 500."""
    for module in _backends().values():
        if isinstance(exc, getattr(module, "OUTAGE_ERRORS", ())):
            return str(module.SERVICE)
    return None


def _shared_services(redis_url: str) -> ModuleType:
    """The backend module of the server named by AGENTLOG_REDIS_URL."""
    return _backends()[redis_url.partition("://")[0].lower()]


@asynccontextmanager
async def open_store(
    database_url: str,
    *,
    redis_url: str | None = None,
    max_event_bytes: int = 1024 * 1024,
    db_timeout: float = 5.0,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> AsyncIterator[Store]:
    """The database's event store (carrying its backend, `store.backend`), with Redis
    wake-ups when configured, else those its backend chooses."""
    url = parse_database_url(database_url)
    async with AsyncExitStack() as stack:
        wakeups: Any = None
        if redis_url:
            # Made first (the store takes it), opened once the store names its deployment:
            # the channel is that deployment's, so another one on this Redis never hears ours.
            wakeups = _shared_services(redis_url).new_wakeups(redis_url)
            stack.push_async_callback(wakeups.close)
        store: Store = await stack.enter_async_context(
            backend_for(database_url).open_store(
                url,
                StoreOptions(
                    wakeups,
                    max_event_bytes=max_event_bytes,
                    db_timeout=db_timeout,
                    cache_bytes=cache_bytes,
                ),
            )
        )
        if wakeups is not None:
            wakeups.namespace(await deployment_key(store))
            await wakeups.open()
        yield store


async def open_run_lock(store: OnBackend) -> RunLock:
    """The run lock: always the database's own (PostgreSQL: a lease row on the database's
    clock; SQLite: its one server's memory, `agentlog serve` admitting one server per file).
    Never Redis, which carries wake-ups only: an instance without AGENTLOG_REDIS_URL, a Redis
    restarted empty, or another deployment on the same Redis never decides who owns a run.
    The caller closes it."""
    return store.backend.run_lock()


def redis_to_check(
    store: Store, redis_url: str, *, timeout: float
) -> AbstractAsyncContextManager[Any]:
    """A client of the Redis server of `redis_url` for a health check: the store's wake-ups'
    own when they use it, else a short-lived one."""
    opened: AbstractAsyncContextManager[Any] = _shared_services(redis_url).client_to_check(
        redis_url, wakeups=store.wakeups, timeout=timeout
    )
    return opened


@asynccontextmanager
async def open_projection_store(store: OnBackend) -> AsyncIterator[ProjectionStore]:
    """The projection store beside an open event store: same SQLite file, same PG schema."""
    projections = store.backend.projection_store()
    await projections.open()
    try:
        yield projections
    finally:
        await projections.close()
