"""One active run per session: a lease with an owner token and a TTL.

The holder refreshes the lease on every heartbeat; only the holder can refresh or release it
(compare-and-pexpire, compare-and-delete), so a process whose lease expired and was taken over
can never extend or free the new holder's lease. If the holder dies, the lease expires and the
next command finds the session free.

Two adapters keep the same contract (tests/integration/test_run_lock.py runs both):
- `RedisRunLock`: `SET key value NX PX ttl`, and Lua scripts for the compare-and-* steps, so
  every process sharing the Redis server sees one holder;
- `LocalRunLock`: the same in one process, with expiry on the monotonic clock; enough when a
  single server process owns the database (the embedded SQLite default).

A lease can also carry a cancel request from another process (`request_cancel`): the holder
polls `cancel_requested` and stops its run, since only it can interrupt its agent.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from agentlog.infra.redis.clients import close_redis, redis_client

KEY_PREFIX = "agentlog:run-lock:"
CANCEL_PREFIX = "agentlog:run-cancel:"


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


def _run_id_of(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    run_id = decoded.get("run_id") if isinstance(decoded, dict) else None
    return run_id if isinstance(run_id, str) else None


def _check_ttl(ttl_ms: int) -> None:
    if not isinstance(ttl_ms, int) or ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be a positive integer, not {ttl_ms!r}")


class RunLock(Protocol):
    """The contract both adapters keep.

    - `acquire` returns a lease when nobody holds the session (or the holder's lease expired),
      else None; `holder` then names the holding run.
    - `refresh` extends the lease by its TTL if it is still held by this lease's token;
      `release` frees it under the same condition. Both return whether they did.
    - `request_cancel` asks the holder of `run_id` to stop it; the holder sees the reason
      through `cancel_requested(lease)` until the request expires (`ttl_ms`).
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


class LocalRunLock:
    """The run lock within one process; expiry on time.monotonic()."""

    def __init__(self) -> None:
        # session id -> (lease value, run id, expires at)
        self._held: dict[str, tuple[str, str, float]] = {}
        self._cancels: dict[tuple[str, str], tuple[str, float]] = {}

    def _live(self, session_id: str) -> tuple[str, str, float] | None:
        entry = self._held.get(session_id)
        if entry is not None and entry[2] <= time.monotonic():
            del self._held[session_id]
            return None
        return entry

    async def acquire(self, session_id: str, run_id: str, ttl_ms: int) -> LockLease | None:
        _check_ttl(ttl_ms)
        if self._live(session_id) is not None:
            return None
        lease = LockLease(session_id, run_id, secrets.token_hex(16), ttl_ms)
        self._held[session_id] = (lease.value, run_id, time.monotonic() + ttl_ms / 1000)
        return lease

    async def holder(self, session_id: str) -> str | None:
        entry = self._live(session_id)
        return entry[1] if entry is not None else None

    async def refresh(self, lease: LockLease) -> bool:
        entry = self._live(lease.session_id)
        if entry is None or entry[0] != lease.value:
            return False
        self._held[lease.session_id] = (
            entry[0],
            entry[1],
            time.monotonic() + lease.ttl_ms / 1000,
        )
        return True

    async def release(self, lease: LockLease) -> bool:
        entry = self._live(lease.session_id)
        if entry is None or entry[0] != lease.value:
            return False
        del self._held[lease.session_id]
        self._cancels.pop((lease.session_id, lease.run_id), None)
        return True

    async def request_cancel(
        self, session_id: str, run_id: str, reason: str, ttl_ms: int = 60_000
    ) -> None:
        _check_ttl(ttl_ms)
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


# Compare-and-pexpire / compare-and-delete: GET and the write must be one atomic step, or a
# lease that expires between them lets us extend or delete the next holder's lock.
_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[2])
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisRunLock:
    """The run lock shared by every process on one Redis server."""

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._redis: aioredis.Redis | None = None

    async def open(self) -> RedisRunLock:
        # Connect and socket timeouts: a hung Redis fails a lock call instead of hanging it.
        self._redis = redis_client(self.url)
        await self._redis.ping()
        return self

    async def close(self) -> None:
        if self._redis is not None:
            await close_redis(self._redis)
            self._redis = None

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None, "RedisRunLock is not open"
        return self._redis

    def _key(self, session_id: str) -> str:
        return self.prefix + session_id

    def _cancel_key(self, session_id: str, run_id: str) -> str:
        return f"{CANCEL_PREFIX}{session_id}:{run_id}"

    async def acquire(self, session_id: str, run_id: str, ttl_ms: int) -> LockLease | None:
        _check_ttl(ttl_ms)
        lease = LockLease(session_id, run_id, secrets.token_hex(16), ttl_ms)
        taken = await self.redis.set(self._key(session_id), lease.value, nx=True, px=ttl_ms)
        return lease if taken else None

    async def holder(self, session_id: str) -> str | None:
        return _run_id_of(await self.redis.get(self._key(session_id)))

    async def refresh(self, lease: LockLease) -> bool:
        done = await self.redis.eval(
            _REFRESH, 1, self._key(lease.session_id), lease.value, lease.ttl_ms
        )
        return bool(done)

    async def release(self, lease: LockLease) -> bool:
        done = await self.redis.eval(
            _RELEASE,
            2,
            self._key(lease.session_id),
            self._cancel_key(lease.session_id, lease.run_id),
            lease.value,
        )
        return bool(done)

    async def request_cancel(
        self, session_id: str, run_id: str, reason: str, ttl_ms: int = 60_000
    ) -> None:
        _check_ttl(ttl_ms)
        await self.redis.set(self._cancel_key(session_id, run_id), reason, px=ttl_ms)

    async def cancel_requested(self, lease: LockLease) -> str | None:
        reason = await self.redis.get(self._cancel_key(lease.session_id, lease.run_id))
        if reason is None:
            return None
        return reason.decode() if isinstance(reason, bytes) else str(reason)
