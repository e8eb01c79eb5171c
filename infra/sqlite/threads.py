"""Running a synchronous SQLite driver without blocking the event loop.

Statements run on threads of our own: one writer thread (SQLite allows one writer at a time
anyway) and a few reader threads, each thread with its own connection, since a connection must
not be used by two threads at once and WAL lets readers run beside the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from agentlog.infra.private_files import private_file

T = TypeVar("T")


# When a commit copies the WAL into the database file itself. A commit that crosses the bound
# runs a checkpoint inside its COMMIT, so the appends it acknowledges wait for the copy and the
# file's fsync: at SQLite's default (1,000 pages, ~500 appends here) that was many times a
# second under load. The event store's `Checkpointer` copies the WAL from a thread of its own
# meanwhile, so the commit that crosses this bound finds most of it copied already; it is
# still needed, because a WAL only starts over from its beginning after a checkpoint that
# caught up with the last commit, which one running beside a busy writer rarely does.
AUTOCHECKPOINT_PAGES = 4_000


def connect(path: str, *, synchronous: str = "FULL") -> sqlite3.Connection:
    if path != ":memory:" and not path.startswith("file:"):
        # SQLite makes the WAL and SHM files with the database file's mode: a 0600 database
        # keeps all three private. Older ones (0644) are narrowed, WAL and SHM too.
        for name in (path, f"{path}-wal", f"{path}-shm"):
            if name == path or Path(name).exists():
                private_file(Path(name))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged append survives power loss, not only a process crash.
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    conn.execute("PRAGMA busy_timeout=30000")
    # Deleted content is overwritten with zeros, so a deleted session leaves nothing in the
    # file (agentlog.infra.sqlite.deletion).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


class SQLiteThreads:
    """A writer thread and reader threads on one SQLite file, a connection per thread."""

    def __init__(
        self, path: str, *, name: str, readers: int = 2, synchronous: str = "FULL"
    ) -> None:
        self.path = path
        self._synchronous = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-write")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix=f"{name}-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()

    async def on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._call, fn)

    async def on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._call, fn)

    def close(self) -> None:
        """Wait for the statements already queued, then close every connection."""
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, synchronous=self._synchronous)
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return fn(conn)


class Checkpointer:
    """Copies the WAL into the database file from a thread and connection of its own, so no
    commit waits for it.

    A PASSIVE checkpoint takes no lock a writer or reader needs: it copies what every reader
    is done with and leaves the rest for next time. Durability is the commit's own fsync of the
    WAL (`synchronous=FULL`); the checkpoint syncs the WAL before copying and the file after.
    Asked after commits, it runs at most one checkpoint at a time and one per `every` seconds.
    """

    def __init__(self, path: str, *, every: float = 0.1) -> None:
        self.path = path
        self.every = every
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="agentlog-sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None
        self._running: asyncio.Future[None] | None = None
        self._last = 0.0
        self.checkpoints = 0

    def committed(self) -> None:
        """A commit happened: checkpoint soon, unless one runs or ran a moment ago."""
        if self.path == ":memory:" or (self._running is not None and not self._running.done()):
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._last < self.every:
            return
        self._last = loop.time()
        self._running = loop.run_in_executor(self._executor, self._checkpoint)
        # A failed checkpoint loses nothing (the WAL keeps every commit): the next one retries.
        self._running.add_done_callback(lambda done: done.cancelled() or done.exception())

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = connect(self.path)
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
