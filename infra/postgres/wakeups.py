"""Wake-ups across processes through PostgreSQL LISTEN/NOTIFY, when Redis is not configured.

The store sends NOTIFY inside the append transaction, so the wake-up is delivered exactly
when the events become visible and never for a rolled-back append.

The LISTEN connection is checked with a query every few seconds and replaced when it fails or
goes silent. That matters beyond wake-ups: PostgreSQL keeps every notification until each
listener has read it, so one stalled LISTEN connection fills the server's NOTIFY queue (8 GB
by default), and once it is full every NOTIFY, and so every append, fails. The queue's fill is
exported as `agentlog_notify_queue_usage`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

from agentlog.infra.local.wakeups import BridgedWakeups
from agentlog.infra.postgres.event_store import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class PostgresWakeups(BridgedWakeups):
    """Local hub fed by a dedicated LISTEN connection."""

    def __init__(self, dsn: str, *, timeout: float = 5.0) -> None:
        super().__init__()  # own_token: the store's, set by agentlog.infra.postgres.backend
        self.dsn = dsn
        self.timeout = timeout
        self._conn: asyncpg.Connection | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def open(self) -> PostgresWakeups:
        await self._connect()
        self._watchdog = asyncio.create_task(self._keep_listening(), name="agentlog-pg-listen")
        return self

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._conn is not None:
            self._conn.terminate()

    async def _connect(self) -> None:
        async with asyncio.timeout(self.timeout):
            conn = await asyncpg.connect(self.dsn, timeout=self.timeout)
            try:
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            except BaseException:
                conn.terminate()
                raise
        self._conn = conn
        self.local.wake_everyone()

    async def _keep_listening(self) -> None:
        checked = 0
        while True:
            await asyncio.sleep(1)
            checked += 1
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._connect()
                elif checked % 3 == 0:
                    async with asyncio.timeout(self.timeout):
                        await self._conn.fetchval("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - retry until the database is back
                log.warning("LISTEN connection lost: %s", exc)
                if self._conn is not None:
                    self._conn.terminate()  # silent or broken: never wait on it
                    self._conn = None

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._deliver(payload)

    async def publish(self, session_ids: Sequence[str]) -> None:
        # Remote processes were told by the NOTIFY inside the append transaction.
        self.local.wake(session_ids)
