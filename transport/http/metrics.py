"""`GET /metrics`: Prometheus text exposition (format 0.0.4), written here without a client
library: counters, gauges and fixed-bucket histograms are a few lines each.

What is measured, and where it comes from:
- appends, events appended, heartbeats and append latency: `Metrics.observe_append`, called by
  the store after every append (Store.append_observers);
- group-commit transactions, retries, batch sizes, appends whose outcome is unknown and
  restarts of the commit writer: read from `store.commit_stats` when scraped;
- the fill of PostgreSQL's NOTIFY queue (when wake-ups go through LISTEN/NOTIFY) and failed
  Redis wake-up publishes: read from the store and its wake-ups when scraped;
- open SSE streams and reconnects (a stream request carrying Last-Event-ID or offset > 0):
  the `count_streams` middleware; events delivered: `count_delivered`, called by the stream;
- the log's last position, projection lag (last position minus the projector's checkpoint)
  and active runs: sources read when scraped.
All counts are this process's, except the log position and the projection lag.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import web

from agentlog.domain.events import Event, HeartbeatRecorded
from agentlog.infra.store.projector import Projector
from agentlog.infra.store.store import Store
from agentlog.transport.keys import STORE

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
SOURCE_TIMEOUT_SECONDS = 2.0

# A value read when scraped: a number, or a coroutine giving one.
Source = Callable[[], float | int | Awaitable[float | int]]
Labels = tuple[tuple[str, str], ...]


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels) + "}"


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple((name, str(labels[name])) for name in self.labelnames)

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        raise NotImplementedError

    def render(self) -> str:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines = [f"# HELP {self.name} {help_text}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{name}{_labels(labels)} {_number(v)}" for name, labels, v in self.samples()]
        return "\n".join(lines) + "\n"


class Counter(_Metric):
    """Only goes up (a name ending in `_total`)."""

    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {} if labelnames else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter never goes down")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def inc_at(self, key: Labels, amount: float = 1.0) -> None:
        """`inc` with the labels already made into a key (`key_of`): for every append."""
        self._values[key] = self._values.get(key, 0.0) + amount

    def key_of(self, **labels: str) -> Labels:
        return self._key(labels)

    def set_total(self, value: float, **labels: str) -> None:
        """Mirror a count kept elsewhere (group commit's own statistics)."""
        self._values[self._key(labels)] = value

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        return [(self.name, key, value) for key, value in sorted(self._values.items())]


class Gauge(_Metric):
    """A value that goes up and down; unset (no sample) until first set."""

    kind = "gauge"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self._value: float | None = None

    def set(self, value: float | None) -> None:
        self._value = value

    def inc(self, amount: float = 1.0) -> None:
        self._value = (self._value or 0.0) + amount

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)

    @property
    def value(self) -> float | None:
        return self._value

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        return [] if self._value is None else [(self.name, (), self._value)]


class Histogram(_Metric):
    """Counts of observations at or below each fixed bucket bound, plus their sum."""

    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help)
        self.bounds = tuple(sorted(buckets))
        self._counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        running = 0
        rows: list[tuple[str, Labels, float]] = []
        for bound, count in zip((*self.bounds, math.inf), self._counts, strict=True):
            running += count
            rows.append((f"{self.name}_bucket", (("le", _number(bound)),), running))
        rows.append((f"{self.name}_sum", (), self.sum))
        rows.append((f"{self.name}_count", (), self.count))
        return rows


class Metrics:
    """This process's metrics; one per app, under METRICS."""

    def __init__(self) -> None:
        self.appends = Counter(
            "agentlog_appends_total", "Appends this process submitted, by outcome.", ["outcome"]
        )
        self._ok = self.appends.key_of(outcome="ok")
        self._failed = self.appends.key_of(outcome="error")
        self.events_appended = Counter(
            "agentlog_events_appended_total", "Events this process appended."
        )
        self.append_seconds = Histogram(
            "agentlog_append_duration_seconds",
            "Time from submitting an append to its commit (or failure).",
            LATENCY_BUCKETS,
        )
        self.heartbeats = Counter("agentlog_heartbeats_total", "Heartbeat events appended.")
        self.commit_transactions = Counter(
            "agentlog_group_commit_transactions_total", "Group-commit transactions written."
        )
        self.commit_retries = Counter(
            "agentlog_group_commit_retries_total", "Group-commit transactions retried."
        )
        self.outcome_unknown = Counter(
            "agentlog_append_outcome_unknown_total",
            "Appends answered 'outcome unknown' (the connection broke at COMMIT).",
        )
        self.writer_restarts = Counter(
            "agentlog_commit_writer_restarts_total",
            "Times the group-commit writer crashed or was cancelled and was replaced.",
        )
        self.notify_queue_usage = Gauge(
            "agentlog_notify_queue_usage",
            "Fraction (0-1) of PostgreSQL's NOTIFY queue in use; appends fail when it is full.",
        )
        self.publish_failures = Counter(
            "agentlog_wakeup_publish_failures_total",
            "Wake-ups that could not be published to Redis (readers fall back to re-checks).",
        )
        self.batch_appends = Histogram(
            "agentlog_group_commit_batch_appends",
            "Appends written per group-commit transaction.",
            BATCH_BUCKETS,
        )
        self.sse_connections = Gauge("agentlog_sse_connections", "Open Server-Sent Events streams.")
        self.sse_connections.set(0)
        self.sse_reconnects = Counter(
            "agentlog_sse_reconnects_total",
            "SSE stream requests that resumed (Last-Event-ID or offset > 0).",
        )
        self.events_delivered = Counter(
            "agentlog_events_delivered_total", "Events sent to SSE clients."
        )
        self.log_position = Gauge("agentlog_log_position", "The last global position in the log.")
        self.projection_lag = Gauge(
            "agentlog_projection_lag_events",
            "Events in the log that the projector has not folded yet.",
        )
        self.active_runs = Gauge("agentlog_active_runs", "Agent runs this process is driving.")
        self.delayed_batches = Counter(
            "agentlog_run_delayed_batches_total",
            "Batches of a run's events that had to wait for the store (retried after a failure).",
        )
        self.continued_after_crash = Counter(
            "agentlog_runs_continued_after_crash_total",
            "Turns this process continued in a new run after the server running them died.",
        )
        self.sessions_deleted = Counter(
            "agentlog_sessions_deleted_total",
            "Sessions this process deleted, by reason (requested, retention).",
            ["reason"],
        )
        # Metrics other modules register (the limits): rendered after these.
        self.extra: list[_Metric] = []
        self.projection_lag_source: Source | None = None
        self.active_runs_source: Source | None = None
        self.delayed_batches_source: Source | None = None
        self.continued_after_crash_source: Source | None = None
        self._batches_seen = 0

    def all(self) -> list[_Metric]:
        return [
            self.appends,
            self.events_appended,
            self.append_seconds,
            self.heartbeats,
            self.commit_transactions,
            self.commit_retries,
            self.outcome_unknown,
            self.writer_restarts,
            self.notify_queue_usage,
            self.publish_failures,
            self.batch_appends,
            self.sse_connections,
            self.sse_reconnects,
            self.events_delivered,
            self.log_position,
            self.projection_lag,
            self.active_runs,
            self.delayed_batches,
            self.continued_after_crash,
            self.sessions_deleted,
            *self.extra,
        ]

    # -- called by the code ------------------------------------------------------------------

    def observe_append(
        self, events: Sequence[Event], seconds: float, error: BaseException | None = None
    ) -> None:
        """One append finished (Store.append_observers calls this). Runs for every append:
        the labels' keys are made once, and a one-event append skips the heartbeat count
        (checking labels and summing a generator cost 7 µs of a ~200 µs HTTP append)."""
        if error is None:
            self.appends.inc_at(self._ok)
            self.events_appended.inc_at((), len(events))
            if len(events) == 1:
                beats = 1 if type(events[0]) is HeartbeatRecorded else 0
            else:
                beats = sum(type(e) is HeartbeatRecorded for e in events)
            if beats:
                self.heartbeats.inc(beats)
        else:
            self.appends.inc_at(self._failed)
        self.append_seconds.observe(seconds)

    def stream_opened(self, *, resumed: bool) -> None:
        self.sse_connections.inc()
        if resumed:
            self.sse_reconnects.inc()

    def stream_closed(self) -> None:
        self.sse_connections.dec()

    def delivered(self, events: int) -> None:
        if events:
            self.events_delivered.inc(events)

    # -- read when scraped -------------------------------------------------------------------

    async def collect(self, store: Store) -> None:
        stats = store.commit_stats
        # GroupCommitStats keeps a list of batch sizes: take what was added since last time.
        sizes = stats.batch_sizes
        for size in sizes[self._batches_seen :]:
            self.batch_appends.observe(size)
        self._batches_seen = len(sizes)
        self.commit_transactions.set_total(stats.transactions)
        self.commit_retries.set_total(stats.retries)
        self.outcome_unknown.set_total(stats.outcome_unknown)
        self.writer_restarts.set_total(stats.writer_restarts)
        failures = getattr(store.wakeups, "publish_failures", None)
        if isinstance(failures, int):
            self.publish_failures.set_total(failures)
        usage = getattr(store, "notify_queue_usage", None)
        if usage is not None and getattr(store, "notify", False):
            self.notify_queue_usage.set(await _read(usage, "NOTIFY queue usage"))
        self.log_position.set(await _read(store.last_position, "log position"))
        self.projection_lag.set(await _read(self.projection_lag_source, "projection lag"))
        self.active_runs.set(await _read(self.active_runs_source, "active runs"))
        delayed = await _read(self.delayed_batches_source, "delayed batches")
        if delayed is not None:
            self.delayed_batches.set_total(delayed)
        continued = await _read(self.continued_after_crash_source, "continued turns")
        if continued is not None:
            self.continued_after_crash.set_total(continued)

    def render(self) -> str:
        return "".join(metric.render() for metric in self.all())


async def _read(source: Source | None, what: str) -> float | None:
    """The source's value, or None (no sample) when it is unset or fails: a scrape never
    fails because one source does."""
    if source is None:
        return None
    try:
        async with asyncio.timeout(SOURCE_TIMEOUT_SECONDS):
            value = source()
            if inspect.isawaitable(value):
                value = await value
        return float(value)
    except Exception as exc:  # noqa: BLE001 - a missing sample, not a failed scrape
        log.warning("metrics: could not read %s: %s", what, exc)
        return None


async def projector_lag(store: Store, projector: Projector) -> int:
    """Last position minus the projector's checkpoint."""
    checkpoint = await projector.projections.checkpoint()
    last: int = await store.last_position()
    return max(0, last - checkpoint.position)


METRICS = web.AppKey("metrics", Metrics)

# For agentlog.transport.openapi.document's ALL_PATHS.
OPENAPI_PATHS: dict[str, Any] = {
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format 0.0.4)",
            "security": [],
            "responses": {"200": {"description": "text/plain; version=0.0.4"}},
        }
    }
}


async def metrics_endpoint(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    await metrics.collect(request.app[STORE])
    return web.Response(body=metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})


def resumes(request: web.Request) -> bool:
    """A stream request that continues an earlier one: Last-Event-ID, or an offset > 0."""
    if "Last-Event-ID" in request.headers:
        return True
    try:
        return int(request.query.get("offset", "0")) > 0
    except ValueError:
        return False


@web.middleware
async def count_streams(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Open SSE streams and reconnects, around any handler asked for text/event-stream."""
    if request.method != "GET" or "text/event-stream" not in request.headers.get("Accept", ""):
        return await handler(request)
    metrics = request.app[METRICS]
    metrics.stream_opened(resumed=resumes(request))
    try:
        return await handler(request)
    finally:
        metrics.stream_closed()


def count_delivered(request: web.Request, events: int) -> None:
    """Called by a stream after each write of `events` events (a no-op without metrics)."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.delivered(events)


def setup_metrics(
    app: web.Application,
    *,
    projection_lag: Source | None = None,
    active_runs: Source | None = None,
    delayed_batches: Source | None = None,
    continued_after_crash: Source | None = None,
) -> Metrics:
    """GET /metrics and the store's append observer (after the ctx that opens app[STORE]);
    streams are counted by `count_streams`, one of every request's steps
    (agentlog.transport.middleware.request_steps)."""
    metrics = Metrics()
    metrics.projection_lag_source = projection_lag
    metrics.active_runs_source = active_runs
    metrics.delayed_batches_source = delayed_batches
    metrics.continued_after_crash_source = continued_after_crash
    app[METRICS] = metrics

    async def observe_appends(app: web.Application) -> AsyncIterator[None]:
        observers: list[Any] | None = getattr(app[STORE], "append_observers", None)
        if observers is not None:
            observers.append(metrics.observe_append)
        try:
            yield
        finally:
            if observers is not None:
                observers.remove(metrics.observe_append)

    app.cleanup_ctx.append(observe_appends)
    app.router.add_get("/metrics", metrics_endpoint)
    return metrics
