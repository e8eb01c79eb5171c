"""A run's hold on its session: taking the run lock for a new run (waiting out a hand-over
from a run that just ended), and keeping it on its own short cycle, apart from heartbeats.

Keeping the lease is what tells the run it may still write: a refresh the lock refuses, or no
successful refresh for a whole TTL, means another process may own the session now, and the
run must stop. The same loop picks up a cancel another process asked for (it travels with the
lease, since only the holder can interrupt its agent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from agentlog.domain.errors import RunAlreadyActive
from agentlog.domain.ports.run_lock import LockLease, RunLock

log = logging.getLogger(__name__)

# A lease taken by abandoned-run recovery rather than a run: its holder is on its way out.
RECOVERY_PREFIX = "recovery:"


async def acquire_for_run(
    lock: RunLock,
    session_id: str,
    run_id: str,
    *,
    ttl_ms: int,
    handover_seconds: float,
    handing_over: Callable[[str], Awaitable[bool]],
    wait_for_local: Callable[[str, float], Awaitable[bool]],
) -> LockLease:
    """The session's lock for a new run, or RunAlreadyActive naming the holder.

    A run whose terminal event is already in the log still holds the lock for the moment
    its CLI takes to exit (~50 ms): a client that starts the next turn as soon as it sees
    the end waits for that hand-over (bounded) instead of being refused. So does a start
    that meets another process's brief abandoned-run recovery. `handing_over(holder)` says
    whether the holder is on its way out; `wait_for_local(holder, timeout)` waits for a run of
    this process to end (False if the holder is not one)."""
    deadline = time.monotonic() + handover_seconds
    while True:
        lease = await lock.acquire(session_id, run_id, ttl_ms)
        if lease is not None:
            return lease
        holder = await lock.holder(session_id)
        remaining = deadline - time.monotonic()
        if holder is None and remaining > 0:
            continue  # released or expired between the two calls: try again
        if holder is None or remaining <= 0:
            raise RunAlreadyActive(session_id, holder or "unknown")
        if not holder.startswith(RECOVERY_PREFIX) and not await handing_over(holder):
            raise RunAlreadyActive(session_id, holder)
        if not await wait_for_local(holder, remaining):
            await asyncio.sleep(min(0.05, remaining))  # another process: poll its lock


async def keep_lease(
    lock: RunLock,
    lease: LockLease,
    *,
    refresh_seconds: float,
    ttl_seconds: float,
    cancel_poll_seconds: float,
    on_lost: Callable[[], None],
    on_cancel: Callable[[str], None],
) -> None:
    """Refresh `lease` every `refresh_seconds` and poll for a cancel request, until the lease
    is lost (`on_lost`) or the task is cancelled (the run has ended: its CLI is gone). A cancel
    request is handed on once (`on_cancel`) and the refreshes go on: a CLI may take longer
    than the TTL to stop, and while it lives no other run may start in its workspace, nor may
    it be recorded abandoned instead of cancelled."""
    tick = min(refresh_seconds, cancel_poll_seconds)
    next_refresh = time.monotonic() + refresh_seconds
    refreshed_at = time.monotonic()
    cancelling = False
    while True:
        if cancelling:
            tick = refresh_seconds  # nothing more to poll for
        await asyncio.sleep(max(0.0, min(tick, next_refresh - time.monotonic())))
        now = time.monotonic()
        if now >= next_refresh:
            next_refresh = max(next_refresh + refresh_seconds, now + refresh_seconds / 2)
            try:
                held: bool | None = await lock.refresh(lease)
            except Exception as exc:  # noqa: BLE001 - a blip; the TTL decides
                log.warning("run %s: could not refresh its lock: %s", lease.run_id, exc)
                held = None
            if held:
                refreshed_at = now
            elif held is False or now - refreshed_at >= ttl_seconds:
                on_lost()
                return
        if cancelling:
            continue
        try:
            reason = await lock.cancel_requested(lease)
        except Exception as exc:  # noqa: BLE001
            log.debug("run %s: cancel poll failed: %s", lease.run_id, exc)
            reason = None
        if reason:
            cancelling = True
            on_cancel(reason)


async def release(lock: RunLock, lease: LockLease) -> None:
    """Free the lease if it is still ours; a failure is logged (it expires by itself)."""
    try:
        if not await lock.release(lease):
            log.warning("run lock of %s was no longer ours to release", lease.session_id)
    except Exception as exc:  # noqa: BLE001 - it expires by itself
        log.warning("could not release the run lock of %s: %s", lease.session_id, exc)
