"""What a parsed `AGENTLOG_DATABASE_URL` answers; each backend parses its own scheme's URLs
(`parse_url` in its `backend.py`, into a type of its own), through
agentlog.infra.store.opening.parse_database_url. Only the backend reads what is inside."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class BadDatabaseUrl(ValueError):
    pass


class DatabaseInUse(RuntimeError):
    """Another server serves a database that only one server may serve (a SQLite file)."""


class DatabaseUrl(Protocol):
    """A database URL as the backend serving its scheme understood it."""

    @property
    def location(self) -> str:
        """Where the database is, for an operator to read (a file, a server's database and
        schema): never a credential."""
        ...

    def describe(self) -> str:
        """Which kind of database, and its location (a start banner)."""
        ...

    def exists(self) -> bool:
        """False only when there is no database yet and opening one would create it empty (a
        SQLite file not made yet): a command that reads the log refuses, rather than answer
        as if the log were empty. A server's database is there for the asking: True."""
        ...

    @property
    def serves_one_process(self) -> bool:
        """True when one server process serves the database (a SQLite file: its run lock and
        wake-ups are in that process's memory), so `agentlog serve --workers` must be 1."""
        ...

    def serving_claim(self) -> AbstractContextManager[None]:
        """Held by `agentlog serve` for its whole life. On a database that one server serves
        (a SQLite file, whose run lock is in its server's memory), entering raises
        DatabaseInUse while another server holds it; a shared database admits every server."""
        ...
