"""One server per SQLite file. A SQLite database's run lock and wake-ups live in the process
that serves it, so a second server on the same file cannot see the first one's runs: it took
them for abandoned within seconds (issue 22). `agentlog serve` holds an exclusive lock on
`<database>.serving` for its whole life, and a second one refuses to start, naming the first.
The kernel drops the lock when its process exits, however it exits (kill -9 included)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from agentlog.infra.private_files import PRIVATE_FILE
from agentlog.infra.store.database_url import DatabaseInUse


@contextlib.contextmanager
def serving_claim(database: str) -> Iterator[None]:
    """Held while this process serves `database`; raises DatabaseInUse if another does."""
    if database == ":memory:":
        yield
        return
    claim = Path(f"{database}.serving")
    fd = os.open(claim, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DatabaseInUse(
                f"another agentlog server (pid {holder}) is serving the SQLite database "
                f"{database}; a SQLite file has one server, whose runs are its own. Stop that "
                "one, give this one another file, or use PostgreSQL (AGENTLOG_DATABASE_URL="
                "postgresql://...) to run several servers on one database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
