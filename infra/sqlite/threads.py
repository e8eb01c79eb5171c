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


def connect(path: str) -> sqlite3.Connection:
    if path != ":memory:" and not path.startswith("file:"):
        # SQLite makes the WAL and SHM files with the database file's mode: a 0600 database
        # keeps all three private. Older ones (0644) are narrowed, WAL and SHM too.
        for name in (path, f"{path}-wal", f"{path}-shm"):
            if name == path or Path(name).exists():
                private_file(Path(name))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged append survives power loss, not only a process crash.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    # Deleted content is overwritten with zeros, so a deleted session leaves nothing in the
    # file (agentlog.infra.sqlite.deletion).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


class SQLiteThreads:
    """A writer thread and reader threads on one SQLite file, a connection per thread."""

    def __init__(self, path: str, *, name: str, readers: int = 2) -> None:
        self.path = path
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
            conn = connect(self.path)
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return fn(conn)
