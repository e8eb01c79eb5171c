"""The background loops run once per deployment, not once per process: each by whichever
process holds its lease.

A loop's lease is a run lock entry (the database's own on PostgreSQL, so every process and
host on the database competes for it; this process's own on SQLite, which one process
serves) under a key no session id can have. The holder refreshes it every quarter TTL and
runs the loop; a holder that cannot refresh (its lease expired, the database is away) stops
its loop at once, and a process that dies leaves a lease that expires after one TTL, when
another process takes the loop over. Every other process retries every quarter TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from agentlog.domain.ports.run_lock import RunLock

log = logging.getLogger(__name__)

# '~' starts no session id created over HTTP or by a chat (transport/http/sessions.py), so a
# loop's lease never meets a session's run lease.
LEASE_PREFIX = "~loop:"


def this_process() -> str:
    """The lease holder's name, as `holder` reads it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_while_leading(
    lock: RunLock,
    name: str,
    loop: Callable[[], Coroutine[Any, Any, None]],
    *,
    ttl_seconds: float,
    until: asyncio.Event | None = None,
) -> None:
    """Run `loop()` while this process holds the lease `name`, until cancelled, or until
    `until` is set and the loop (which watches it too, to stop gracefully) has returned."""
    key = LEASE_PREFIX + name
    ttl_ms = max(1, round(ttl_seconds * 1000))
    period = ttl_seconds / 4
    stopping = until or asyncio.Event()
    while not stopping.is_set():
        try:
            lease = await lock.acquire(key, this_process(), ttl_ms)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("could not ask for the lease of %s; trying again", name, exc_info=True)
            lease = None
        if lease is None:
            await _pause(period, stopping)
            continue
        log.info("this process runs %s", name)
        task = asyncio.create_task(loop(), name=f"agentlog-{name}")
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=period)
                if done:
                    task.result()  # a loop ends only by failing: say so, then compete again
                    break
                try:
                    held = await lock.refresh(lease)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("could not refresh the lease of %s", name, exc_info=True)
                    held = False
                if not held:
                    log.warning("lost the lease of %s; another process may run it now", name)
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", name)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await asyncio.shield(lock.release(lease))
        await _pause(period, stopping)  # after a loss or a failure, give the others a turn


async def _pause(seconds: float, stopping: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
