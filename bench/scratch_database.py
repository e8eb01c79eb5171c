"""What the benches that start `agentlog serve` share: the PostgreSQL flag, and a database of
their own for one run (a file in a temporary folder, or a fresh schema on the PostgreSQL
server the tests use) that is gone afterwards."""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def add_postgres_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres", default=os.environ.get("AGENTLOG_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )


@asynccontextmanager
async def scratch_database(
    sqlite: bool, postgres: str, folder: str, name: str
) -> AsyncIterator[tuple[str, str]]:
    """(the database URL for AGENTLOG_DATABASE_URL, the schema): `folder/name.db`, or a schema
    `bench_<random>` on `postgres`, dropped when the block ends (whatever happened)."""
    schema = "bench_" + uuid.uuid4().hex[:8]
    url = f"sqlite:///{folder}/{name}.db" if sqlite else f"{postgres}?schema={schema}"
    try:
        yield url, schema
    finally:
        if not sqlite:
            import asyncpg

            conn = await asyncpg.connect(postgres)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()
