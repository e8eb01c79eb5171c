"""The run lock shared by every process on one Redis server.

`SET key value NX PX ttl` takes the lease, and Lua scripts do the compare-and-* steps. It keeps
the contract of agentlog.domain.ports.run_lock.RunLock.
"""

from __future__ import annotations

import json
import secrets

import redis.asyncio as aioredis

from agentlog.domain.ports.run_lock import LockLease, check_ttl
from agentlog.infra.redis.clients import close_redis, redis_client

KEY_PREFIX = "agentlog:run-lock:"
CANCEL_PREFIX = "agentlog:run-cancel:"


def _run_id_of(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    run_id = decoded.get("run_id") if isinstance(decoded, dict) else None
    return run_id if isinstance(run_id, str) else None


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
        check_ttl(ttl_ms)
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
        check_ttl(ttl_ms)
        await self.redis.set(self._cancel_key(session_id, run_id), reason, px=ttl_ms)

    async def cancel_requested(self, lease: LockLease) -> str | None:
        reason = await self.redis.get(self._cancel_key(lease.session_id, lease.run_id))
        if reason is None:
            return None
        return reason.decode() if isinstance(reason, bytes) else str(reason)
