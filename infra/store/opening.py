"""Open the configured event store with the wake-up transport that fits it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from agentlog.infra.local.wakeups import LocalWakeups
from agentlog.infra.postgres.event_store import PostgresEventStore
from agentlog.infra.postgres.wakeups import PostgresWakeups
from agentlog.infra.redis.wakeups import RedisWakeups
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.database_url import parse_database_url


@asynccontextmanager
async def open_store(
    database_url: str,
    *,
    redis_url: str | None = None,
    max_event_bytes: int = 1024 * 1024,
    db_timeout: float = 5.0,
) -> AsyncIterator[StoreBase]:
    """SQLite with in-process wake-ups by default; Redis wake-ups when configured; else
    PostgreSQL LISTEN/NOTIFY, so another server process sees an append within milliseconds."""
    url = parse_database_url(database_url)
    async with AsyncExitStack() as stack:
        wakeups: LocalWakeups | RedisWakeups | PostgresWakeups
        if redis_url:
            wakeups = await RedisWakeups(redis_url).open()
            stack.push_async_callback(wakeups.close)
        elif url.kind == "postgresql":
            wakeups = await PostgresWakeups(url.target, timeout=db_timeout).open()
            stack.push_async_callback(wakeups.close)
        else:
            wakeups = LocalWakeups()
        store: StoreBase
        if url.kind == "sqlite":
            store = SQLiteEventStore(url.target, wakeups=wakeups, max_event_bytes=max_event_bytes)
            await store.open()
        else:
            pg = PostgresEventStore(
                url.target,
                schema=url.schema,
                wakeups=wakeups,
                notify=isinstance(wakeups, PostgresWakeups),
                max_event_bytes=max_event_bytes,
                timeout=db_timeout,
            )
            if isinstance(wakeups, PostgresWakeups):
                wakeups.own_token = pg.process_token
            store = await pg.open()
        stack.push_async_callback(store.close)
        yield store
