"""What a parsed `AGENTLOG_DATABASE_URL` holds; each backend parses its own scheme's URLs
(`parse_url` in its `backend.py`), through agentlog.infra.store.opening.parse_database_url."""

from __future__ import annotations

from dataclasses import dataclass


class BadDatabaseUrl(ValueError):
    pass


@dataclass(frozen=True)
class DatabaseUrl:
    kind: str  # "sqlite" or "postgresql"
    target: str  # a file path for SQLite, an asyncpg DSN for PostgreSQL
    schema: str = "public"
