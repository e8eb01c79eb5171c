"""Adapters behind the domain ports: SQLite, PostgreSQL, Redis, the agent SDK."""
