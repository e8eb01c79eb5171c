"""SQLite: one file holds the log and everything beside it; one server process serves it.

`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`. Its wake-ups and run lock are
those of this process (agentlog.infra.local) unless Redis is configured: a file is served by
one process, so there is nobody else to wake or to lock out.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from agentlog.infra.local.run_lock import LocalRunLock
from agentlog.infra.local.wakeups import LocalWakeups
from agentlog.infra.sqlite.attachments import SQLiteAttachments
from agentlog.infra.sqlite.deletion import delete_session_in, tables_holding
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.infra.sqlite.importing import SQLiteImports, positions_removed
from agentlog.infra.sqlite.projection_store import SQLiteProjectionStore
from agentlog.infra.sqlite.serving_claim import serving_claim
from agentlog.infra.sqlite.token_revocations import SQLiteTokenRevocations
from agentlog.infra.sqlite.transcripts import SQLiteTranscripts
from agentlog.infra.store.backend import StoreOptions
from agentlog.infra.store.database_url import BadDatabaseUrl
from agentlog.infra.store.import_batches import (
    BetweenBatches,
    Written,
    clear_dead_imports,
    write_in_batches,
)
from agentlog.infra.store.imported_session import ImportedSession

SCHEMES = ("sqlite",)
# What the driver raises when a statement fails: an operator command reports it in one line.
DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)
SERVICE = "database"


@dataclass(frozen=True)
class SQLiteUrl:
    """A SQLite database URL (agentlog.infra.store.database_url.DatabaseUrl): its file."""

    path: str
    serves_one_process = True

    @property
    def location(self) -> str:
        return self.path

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def exists(self) -> bool:
        # Opening a missing file creates it, empty; an in-memory database is always new.
        return self.path == ":memory:" or Path(self.path).exists()

    def serving_claim(self) -> AbstractContextManager[None]:
        return serving_claim(self.path)


def parse_url(url: str) -> SQLiteUrl:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db`: the path after the third slash."""
    rest = url.partition("://")[2]
    if not rest.startswith("/") or rest == "/":
        raise BadDatabaseUrl(
            f"SQLite URL {url!r} must look like sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return SQLiteUrl(rest[1:])


class SQLiteBackend:
    """The adapters beside a `SQLiteEventStore`, on its file (agentlog.infra.store.backend)."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self.store = store
        store.backend = self

    serves_one_process = True

    def projection_store(self) -> SQLiteProjectionStore:
        return SQLiteProjectionStore(self.store.path)

    def transcript_tables(self) -> SQLiteTranscripts:
        return SQLiteTranscripts(self.store.threads)

    async def deployment_identity(self) -> str:
        if self.store.path == ":memory:":
            return f"sqlite-memory:{os.getpid()}:{id(self.store)}"  # this process's alone
        return "sqlite:" + await asyncio.to_thread(os.path.realpath, self.store.path)

    def token_revocations(self) -> SQLiteTokenRevocations:
        return SQLiteTokenRevocations(self.store.threads)

    def attachments(self) -> SQLiteAttachments:
        return SQLiteAttachments(self.store.threads)

    def run_lock(self) -> LocalRunLock:
        return LocalRunLock()

    async def delete_session(self, session_id: str, reason: str) -> tuple[int, int]:
        return await delete_session_in(self.store, session_id, reason)

    async def import_session(
        self, session: ImportedSession, between_batches: BetweenBatches | None = None
    ) -> Written:
        return await write_in_batches(SQLiteImports(self.store), session, between_batches)

    async def importing_sessions(self, session_ids: list[str]) -> set[str]:
        return await SQLiteImports(self.store).importing(session_ids)

    async def clear_dead_imports(self) -> list[str]:
        return await clear_dead_imports(SQLiteImports(self.store))

    async def positions_removed_by_imports(self) -> int:
        return await positions_removed(self.store)

    async def tables_holding(self, text: str) -> list[str]:
        return await self.store.threads.on_reader(lambda conn: tables_holding(conn, text))

    async def refresh_statistics(self) -> None:
        await self.store.threads.on_writer(analyze)

    def connection_failed(self, exc: BaseException) -> bool:
        # A file has no connection to lose; what an OS or a timeout refused is retried as one.
        return isinstance(exc, (OSError, TimeoutError))


# Rows ANALYZE reads per index: enough for the planner to pick the (session, seq) index over
# a scan, at a cost that does not grow with the file.
ANALYSIS_LIMIT = 1000


def analyze(conn: sqlite3.Connection) -> None:
    """Sampled statistics for every table (sqlite_stat1); every connection, the readers'
    too, loads them with its next statement (ANALYZE changes the schema's cookie)."""
    conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
    conn.execute("ANALYZE")
    conn.commit()


@asynccontextmanager
async def open_store(url: SQLiteUrl, options: StoreOptions) -> AsyncIterator[SQLiteEventStore]:
    """The file's event store, carrying its backend; in-process wake-ups unless given others."""
    store = SQLiteEventStore(
        url.path,
        wakeups=options.wakeups or LocalWakeups(),
        max_event_bytes=options.max_event_bytes,
    )
    SQLiteBackend(store)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
