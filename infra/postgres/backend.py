"""PostgreSQL: one schema holds the log and everything beside it, shared by every process.

`postgresql://host/db?schema=name` (`postgres://` too). Without Redis, its wake-ups travel by
LISTEN/NOTIFY and its run lock is a table of leases, so processes that share the database
share both without another server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from agentlog.infra.postgres.attachments import PostgresAttachments
from agentlog.infra.postgres.deletion import delete_session_in, tables_holding_in
from agentlog.infra.postgres.event_store import PostgresEventStore, connection_failed
from agentlog.infra.postgres.importing import import_session_in
from agentlog.infra.postgres.projection_store import PostgresProjectionStore
from agentlog.infra.postgres.run_lock import PostgresRunLock
from agentlog.infra.postgres.token_revocations import PostgresTokenRevocations
from agentlog.infra.postgres.transcripts import PostgresTranscripts
from agentlog.infra.postgres.wakeups import PostgresWakeups
from agentlog.infra.store.backend import StoreOptions
from agentlog.infra.store.byte_bounded import heads_share
from agentlog.infra.store.database_url import BadDatabaseUrl
from agentlog.infra.store.imported_session import ImportedSession

SCHEMES = ("postgresql", "postgres")
# What the driver raises when a statement or the connection fails: an operator command
# reports it in one line.
DRIVER_ERRORS: tuple[type[Exception], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)
SERVICE = "database"


@dataclass(frozen=True)
class PostgresUrl:
    """A PostgreSQL database URL (agentlog.infra.store.database_url.DatabaseUrl): an asyncpg
    DSN and the schema that holds agentlog's tables."""

    dsn: str = field(repr=False)  # may hold a password: never in a log line or traceback
    schema: str = "public"
    serves_one_process = False

    @property
    def location(self) -> str:
        # The server, database and schema; the DSN's user and password stay out of sight.
        parts = urlsplit(self.dsn)
        server = (parts.hostname or "") + (f":{parts.port}" if parts.port else "") + parts.path
        return f"{server} schema {self.schema}" if server else f"schema {self.schema}"

    def describe(self) -> str:
        return f"postgresql {self.location}"

    def exists(self) -> bool:
        return True

    def serving_claim(self) -> AbstractContextManager[None]:
        # Every server shares the database: the run lease is in it (run_lock.py).
        return nullcontext()


def parse_url(url: str) -> PostgresUrl:
    """An asyncpg DSN, and the schema named by the `schema` parameter (default `public`)."""
    parts = urlsplit(url)
    if not parts.hostname and "host=" not in parts.query:
        raise BadDatabaseUrl(f"PostgreSQL URL {url!r} names no host")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = "public"
    kept = []
    for key, value in query:
        if key == "schema":
            if not value:
                raise BadDatabaseUrl("the schema parameter of the database URL is empty")
            schema = value
        else:
            kept.append((key, value))
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), ""))
    return PostgresUrl(dsn, schema)


class PostgresBackend:
    """The adapters beside a `PostgresEventStore`, in its schema and on its pool."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        store.backend = self

    serves_one_process = False

    def projection_store(self) -> PostgresProjectionStore:
        return PostgresProjectionStore(self.store.pool, self.store.schema)

    def transcript_tables(self) -> PostgresTranscripts:
        return PostgresTranscripts(self.store.pool, self.store.schema)

    async def deployment_identity(self) -> str:
        # The cluster's system identifier (set at initdb, unique per cluster), the database
        # and the schema. Reading it may need pg_read_all_settings-like rights: without them,
        # the server's own address and port name the cluster instead.
        async with self.store.pool.acquire() as conn:
            try:
                cluster = await conn.fetchval("SELECT system_identifier FROM pg_control_system()")
            except asyncpg.InsufficientPrivilegeError:
                cluster = await conn.fetchval(
                    "SELECT coalesce(host(inet_server_addr()), 'socket') || ':' || "
                    "coalesce(inet_server_port(), 0)"
                )
            database = await conn.fetchval("SELECT current_database()")
        return f"postgresql:{cluster}/{database}/{self.store.schema}"

    def token_revocations(self) -> PostgresTokenRevocations:
        return PostgresTokenRevocations(self.store.pool, self.store.schema)

    def attachments(self) -> PostgresAttachments:
        return PostgresAttachments(self.store.pool, self.store.schema)

    def run_lock(self) -> PostgresRunLock:
        # In the store's own database: several processes sharing it keep one run per session.
        return PostgresRunLock(self.store.pool, self.store.schema)

    async def delete_session(self, session_id: str, reason: str) -> tuple[int, int]:
        return await delete_session_in(self.store, session_id, reason)

    async def import_session(
        self, session: ImportedSession, staged: Callable[[], Awaitable[None]] | None = None
    ) -> int:
        return await import_session_in(self.store, session, staged)

    async def tables_holding(self, text: str) -> list[str]:
        return await tables_holding_in(self.store, text)

    async def refresh_statistics(self) -> None:
        await self.store.analyze()

    def connection_failed(self, exc: BaseException) -> bool:
        return connection_failed(exc)


@asynccontextmanager
async def open_store(url: PostgresUrl, options: StoreOptions) -> AsyncIterator[PostgresEventStore]:
    """The schema's event store, carrying its backend; without other wake-ups, LISTEN/NOTIFY,
    so another server process sees an append within milliseconds."""
    async with AsyncExitStack() as stack:
        listening: PostgresWakeups | None = None
        if options.wakeups is None:
            listening = await PostgresWakeups(url.dsn, timeout=options.db_timeout).open()
            stack.push_async_callback(listening.close)
        store = PostgresEventStore(
            url.dsn,
            schema=url.schema,
            wakeups=options.wakeups or listening,
            notify=listening is not None,
            max_event_bytes=options.max_event_bytes,
            timeout=options.db_timeout,
            heads_cache_bytes=heads_share(options.cache_bytes),
        )
        PostgresBackend(store)
        if listening is not None:
            # Its own appends already woke this process's readers: skip their echo.
            listening.own_token = store.process_token
        await store.open()
        stack.push_async_callback(store.close)
        yield store
