"""Parse `AGENTLOG_DATABASE_URL` into what a store adapter needs, with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class BadDatabaseUrl(ValueError):
    pass


@dataclass(frozen=True)
class DatabaseUrl:
    kind: str  # "sqlite" or "postgresql"
    target: str  # a file path for SQLite, an asyncpg DSN for PostgreSQL
    schema: str = "public"


def parse_database_url(url: str) -> DatabaseUrl:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db`, `postgresql://host/db?schema=name`."""
    if not url or not isinstance(url, str):
        raise BadDatabaseUrl("database URL is empty")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise BadDatabaseUrl(
            f"database URL {url!r} has no scheme: use sqlite:///path or postgresql://host/db"
        )
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise BadDatabaseUrl(
                f"SQLite URL {url!r} must look like sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db"
            )
        return DatabaseUrl("sqlite", rest[1:])
    if scheme in ("postgresql", "postgres"):
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
        return DatabaseUrl("postgresql", dsn, schema)
    raise BadDatabaseUrl(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path or postgresql://host/db"
    )
