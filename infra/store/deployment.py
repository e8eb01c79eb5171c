"""A deployment's name, from its database's identity: every instance on one database gets the
same, another database (another SQLite file, another PostgreSQL cluster, database or schema)
another. What instances share outside the database is kept under it, so two deployments on one
Redis or one host never meet: the Redis wake-up channel and the default workspace root."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from agentlog.infra.store.store import OnBackend


async def deployment_key(store: OnBackend) -> str:
    """16 hex digits naming the store's database (a hash: the identity may name files)."""
    identity = await store.backend.deployment_identity()
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def default_workspace_root(key: str) -> Path:
    return Path(tempfile.gettempdir()) / "agentlog-workspaces" / key
