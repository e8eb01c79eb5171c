"""The run lock within one process, with expiry on the monotonic clock: enough when a single
server process owns the database (the embedded SQLite default). It keeps the contract of
agentlog.domain.ports.run_lock.RunLock."""

from __future__ import annotations

import secrets
import time

from agentlog.domain.ports.run_lock import LockLease, check_ttl


class LocalRunLock:
    """The run lock within one process; expiry on time.monotonic()."""

    def __init__(self) -> None:
        # session id -> (lease value, run id, expires at)
        self._held: dict[str, tuple[str, str, float]] = {}
        self._cancels: dict[tuple[str, str], tuple[str, float]] = {}

    def _live(self, session_id: str) -> tuple[str, str, float] | None:
        """The entry while its TTL runs; an expired one stays until someone acquires the
        session, so its owner's late refresh still finds it (see `refresh`)."""
        entry = self._held.get(session_id)
        if entry is not None and entry[2] <= time.monotonic():
            return None
        return entry

    async def acquire(self, session_id: str, run_id: str, ttl_ms: int) -> LockLease | None:
        check_ttl(ttl_ms)
        if self._live(session_id) is not None:
            return None
        lease = LockLease(session_id, run_id, secrets.token_hex(16), ttl_ms)
        self._held[session_id] = (lease.value, run_id, time.monotonic() + ttl_ms / 1000)
        return lease

    async def holder(self, session_id: str) -> str | None:
        entry = self._live(session_id)
        return entry[1] if entry is not None else None

    async def refresh(self, lease: LockLease) -> bool:
        # Late is not lost: past its TTL the lease is still this owner's until another
        # acquire replaced it.
        entry = self._held.get(lease.session_id)
        if entry is None or entry[0] != lease.value:
            return False
        self._held[lease.session_id] = (
            entry[0],
            entry[1],
            time.monotonic() + lease.ttl_ms / 1000,
        )
        return True

    async def release(self, lease: LockLease) -> bool:
        entry = self._held.get(lease.session_id)
        if entry is None or entry[0] != lease.value:
            return False
        del self._held[lease.session_id]
        self._cancels.pop((lease.session_id, lease.run_id), None)
        return True

    async def request_cancel(
        self, session_id: str, run_id: str, reason: str, ttl_ms: int = 60_000
    ) -> None:
        check_ttl(ttl_ms)
        self._cancels[(session_id, run_id)] = (reason, time.monotonic() + ttl_ms / 1000)

    async def cancel_requested(self, lease: LockLease) -> str | None:
        entry = self._cancels.get((lease.session_id, lease.run_id))
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._cancels[(lease.session_id, lease.run_id)]
            return None
        return entry[0]

    async def close(self) -> None:
        self._held.clear()
        self._cancels.clear()
