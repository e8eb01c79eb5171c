"""The run lock: one active run per session, as a lease with an owner token and a TTL.

The holder refreshes the lease on every heartbeat; only the holder can refresh or release it
(compare-and-extend, compare-and-delete), so a process whose lease expired and was taken over
can never extend or free the new holder's lease. If the holder dies, the lease expires and the
next command finds the session free.

A lease can also carry a cancel request from another process (`request_cancel`): the holder
polls `cancel_requested` and stops its run, since only it can interrupt its agent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LockLease:
    """Proof of holding a session's run lock: only this token refreshes or releases it."""

    session_id: str
    run_id: str
    token: str
    ttl_ms: int

    @property
    def value(self) -> str:
        # What the lock stores: compared whole, so a stranger's token never matches.
        return json.dumps({"token": self.token, "run_id": self.run_id}, separators=(",", ":"))


def check_ttl(ttl_ms: int) -> None:
    """Every lock refuses a TTL that is not a positive integer of milliseconds."""
    if not isinstance(ttl_ms, int) or ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be a positive integer, not {ttl_ms!r}")


class RunLock(Protocol):
    """The contract every adapter keeps (tests/contract/test_run_lock.py runs them all).

    - `acquire` returns a lease when nobody holds the session (or the holder's lease expired),
      else None; `holder` then names the holding run. A TTL that is not a positive integer
      raises ValueError.
    - `refresh` extends the lease by its TTL if it is still held by this lease's token:
      nobody acquired the session since, even if the TTL ran out before the refresh came (a
      slow loop or database is not a lost lease; a lease another owner took is). `release`
      frees it under the same condition. Both return whether they did.
    - `request_cancel` asks the holder of `run_id` to stop it; the holder sees the reason
      through `cancel_requested(lease)` until the request expires (`ttl_ms`) or the lease is
      released.
    """

    async def acquire(self, session_id: str, run_id: str, ttl_ms: int) -> LockLease | None: ...

    async def holder(self, session_id: str) -> str | None: ...

    async def refresh(self, lease: LockLease) -> bool: ...

    async def release(self, lease: LockLease) -> bool: ...

    async def request_cancel(
        self, session_id: str, run_id: str, reason: str, ttl_ms: int = 60_000
    ) -> None: ...

    async def cancel_requested(self, lease: LockLease) -> str | None: ...

    async def close(self) -> None: ...
