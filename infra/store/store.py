"""The Store port: an event store as a backend's `open_store` hands it out.

Handlers, the CLI and the use cases in agentlog.infra.sessions hold the store through this
port, not through StoreBase: it is the EventStore port (agentlog.domain.ports.event_store),
plus what the app around the log needs of it and what the domain must not see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from agentlog.domain.events import Event
from agentlog.domain.ports.event_store import EventStore
from agentlog.domain.ports.wakeups import Wakeups
from agentlog.infra.store.backend import Backend
from agentlog.infra.store.group_commit import GroupCommitStats

# Called after every append with (its events, seconds it took, the error or None): metrics.
AppendObserver = Callable[[Sequence[Event], float, BaseException | None], None]


class OnBackend(Protocol):
    """Whatever carries the backend it was opened on: the adapters beside its log (projection
    rows, transcripts, the run lock) are reached through it."""

    @property
    def backend(self) -> Backend: ...


class Store(EventStore, OnBackend, Protocol):
    """The log, its backend, and its commit writer.

    Contract, beside EventStore's (StoreBase keeps it for every backend):
    - `backend` is the Backend of the database the log is in (agentlog.infra.store.backend).
    - `wakeups` are the ones its appends publish to: readers of other processes are woken
      through them too when they are shared (Redis, LISTEN/NOTIFY).
    - `append_observers` are called after every append, with its events, the seconds it took
      and its error or None (metrics); `commit_stats` counts the commit writer's work.
    - `probe_writes` raises unless an append could commit now, asked of the commit writer
      itself (GET /healthz); `close` waits for the appends already submitted.
    """

    wakeups: Wakeups
    append_observers: list[AppendObserver]

    @property
    def commit_stats(self) -> GroupCommitStats: ...

    async def probe_writes(self) -> None: ...

    async def close(self) -> None: ...
