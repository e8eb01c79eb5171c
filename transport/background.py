"""The app's background loops (the abandoned-run sweeper, the projector, the retention and
workspace sweeps, the idempotency-key pruner), each started once per deployment: every
process competes for its lease and only the holder runs it (agentlog.infra.store.leadership),
so `agentlog serve --workers N`, and N hosts, run each loop once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from agentlog.infra.store.leadership import run_while_leading
from agentlog.transport.keys import LOOP_LEASES, SETTINGS


def start_once_per_deployment(
    app: web.Application,
    name: str,
    loop: Callable[[], Coroutine[Any, Any, None]],
    until: asyncio.Event | None = None,
) -> asyncio.Task[None]:
    """A task that runs `loop()` whenever this process holds the lease `name`. It ends when
    cancelled (the loop is cancelled), or once `until` is set and the loop has returned; the
    lease is released either way."""
    return asyncio.create_task(
        run_while_leading(
            app[LOOP_LEASES],
            name,
            loop,
            ttl_seconds=app[SETTINGS].agent.lock_ttl_seconds,
            until=until,
        ),
        name=f"agentlog-lead-{name}",
    )
