"""Scenario 9: metrics move. The app opens its own store from its settings, as `agentlog
serve` does; appends go in over HTTP and /metrics is read back over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient

from agentlog.domain.events import HeartbeatRecorded
from agentlog.transport.app import create_app
from agentlog.transport.keys import STORE
from agentlog.transport.settings import Settings
from tests.support.prometheus_text import check_histogram, parse

ClientFactory = Callable[..., Awaitable[TestClient]]


async def scrape(client: TestClient) -> dict[str, float]:
    response = await client.get("/metrics")
    assert response.status == 200
    families = parse(await response.text())
    check_histogram(families["agentlog_append_duration_seconds"])
    values = {
        name: families[name].samples[0][2]
        for name in (
            "agentlog_events_appended_total",
            "agentlog_heartbeats_total",
            "agentlog_append_outcome_unknown_total",
            "agentlog_commit_writer_restarts_total",
        )
    }
    samples = {n: v for n, _, v in families["agentlog_append_duration_seconds"].samples}
    values["latency_count"] = samples["agentlog_append_duration_seconds_count"]
    appends = {s[1]["outcome"]: s[2] for s in families["agentlog_appends_total"].samples}
    values["appends_ok"] = appends.get("ok", 0)
    return values


async def test_appends_over_http_move_the_counters_and_the_latency_histogram(
    aiohttp_client: ClientFactory, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(Settings(database_url=sqlite_url)))
    before = await scrape(client)
    assert (await client.post("/v1/sessions", json={"id": "s"})).status == 201
    n = 17
    for i in range(n):
        body = {"events": [{"type": "custom", "name": "x", "data": i}] * 2}
        response = await client.post("/v1/sessions/s/events", json=body)
        assert response.status == 200
    bad = await client.post("/v1/sessions/nope/events", json=body)
    assert bad.status == 404
    await client.app[STORE].append("s", [HeartbeatRecorded(), HeartbeatRecorded()])

    after = await scrape(client)
    assert (
        after["agentlog_events_appended_total"] - before["agentlog_events_appended_total"]
        == 1 + 2 * n + 2
    )
    assert after["appends_ok"] - before["appends_ok"] == 1 + n + 1
    assert after["latency_count"] - before["latency_count"] == 1 + n + 1 + 1  # and the 404
    assert after["agentlog_heartbeats_total"] - before["agentlog_heartbeats_total"] == 2
    assert after["agentlog_append_outcome_unknown_total"] == 0
    assert after["agentlog_commit_writer_restarts_total"] == 0


async def test_the_notify_queue_fill_is_exported_when_wake_ups_use_listen_notify(
    aiohttp_client: ClientFactory, postgres_url: str
) -> None:
    client = await aiohttp_client(create_app(Settings(database_url=postgres_url)))
    assert (await client.post("/v1/sessions", json={"id": "s"})).status == 201
    response = await client.get("/metrics")
    samples = parse(await response.text())["agentlog_notify_queue_usage"].samples
    assert len(samples) == 1 and 0 <= samples[0][2] < 0.5
