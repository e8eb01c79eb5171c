"""What an SQLite commit waits for: its own fsync (appends), none (projection rows), and never
a copy of the WAL into the file, which a thread of the store's own does beside it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.infra.sqlite.projection_store import SQLiteProjectionStore
from agentlog.infra.sqlite.threads import AUTOCHECKPOINT_PAGES

FULL, NORMAL = 2, 1


async def test_appends_are_synced_at_commit_and_projection_rows_are_not(tmp_path: Path) -> None:
    path = str(tmp_path / "log.db")
    async with SQLiteEventStore(path) as store:
        projections = await SQLiteProjectionStore(path).open()
        try:

            def settings(conn: sqlite3.Connection) -> tuple[int, int]:
                synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
                return synchronous, conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]

            assert await store.threads.on_writer(settings) == (FULL, AUTOCHECKPOINT_PAGES)
            assert await projections._on_writer(settings) == (NORMAL, AUTOCHECKPOINT_PAGES)
        finally:
            await projections.close()


async def test_the_wal_is_copied_into_the_file_beside_the_appends(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with SQLiteEventStore(str(path)) as store:
        await store.append("s", [SessionCreated()])
        empty = path.stat().st_size
        for _ in range(3):  # one checkpoint at most every 0.1 s
            for n in range(50):
                await store.append("s", [CustomEventRecorded(name="n", data="x" * 2000 + str(n))])
            await asyncio.sleep(0.12)
        await store.append("s", [CustomEventRecorded(name="last")])
        for _ in range(100):
            if store._checkpointer.checkpoints >= 2:
                break
            await asyncio.sleep(0.02)
        # 150 events of 2 KB are far below the commit's own bound (AUTOCHECKPOINT_PAGES): only
        # the store's checkpoints can have copied them into the file.
        assert store._checkpointer.checkpoints >= 2
        assert path.stat().st_size > empty + 150 * 2000
        assert await store.head("s") == 152
