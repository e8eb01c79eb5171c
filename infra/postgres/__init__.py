"""The production backend: PostgreSQL through asyncpg."""
