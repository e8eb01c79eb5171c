"""Deleting a session on SQLite leaves nothing of it in the database file or its WAL (what every
backend keeps is checked in tests/contract/test_deletion.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.store.opening import open_projection_store, open_store
from agentlog.infra.store.projector import Projector
from tests.contract.test_deletion import fill


async def test_the_sqlite_file_and_its_wal_hold_nothing_of_it_after_the_delete(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agentlog.db"
    marker = "MARKER-" + uuid.uuid4().hex
    async with open_store(f"sqlite:///{path}") as store:
        await fill(store, "doomed", marker)
        await fill(store, "kept", "other")
        async with open_projection_store(store) as projections:
            await Projector(store, projections).catch_up()
            # It was written, in the file or the WAL.
            assert marker.encode() in await asyncio.to_thread(on_disk, path)
            await SessionDeleter(store).delete("doomed")
            assert marker.encode() not in await asyncio.to_thread(on_disk, path)


def on_disk(path: Path) -> bytes:
    """The database file and its WAL, as bytes."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
