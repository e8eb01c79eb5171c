"""Keeping the query planner's statistics fresh after bulk writes.

An import (and so a fork, which goes through it) writes a session's events in one
transaction; the database's own statistics catch up with such a jump late or never (on
PostgreSQL autovacuum waits for a tenth of a table to change; SQLite has none until ANALYZE),
and meanwhile the planner picks scans for lookups that an index answers. Small writes do not
move the statistics, so only a write of at least BULK_EVENTS events refreshes them: once per
bulk write, sampled, off the append path.
"""

from __future__ import annotations

import logging

from agentlog.infra.store.store import OnBackend

log = logging.getLogger(__name__)

# Events written at once that make the statistics worth refreshing (an ANALYZE costs tens of
# milliseconds; below this a bulk write does not change a plan).
BULK_EVENTS = 10_000


async def after_bulk_write(store: OnBackend, events: int) -> bool:
    """Refresh the statistics when `events` written at once is bulk; True if it did. A
    failure is logged, never raised: the bulk write itself has committed."""
    if events < BULK_EVENTS:
        return False
    try:
        await store.backend.refresh_statistics()
    except Exception:
        log.exception("refreshing the planner's statistics after %d events failed", events)
        return False
    return True
