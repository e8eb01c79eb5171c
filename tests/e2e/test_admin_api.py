"""The operator's HTTP views through the real app: the global feed, the sessions list with
status, /healthz with Redis, and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentlog.domain.events import RunStarted, SessionCreated
from agentlog.infra.agent.run.runner import open_agent_runner
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.http import admin as admin_api
from agentlog.transport.openapi.document import ALL_PATHS
from agentlog.transport.settings import Settings
from tests.integration.projection_helpers import a_run, seed
from tests.support.prometheus_text import parse

ClientFactory = Callable[..., Awaitable[TestClient]]


def operator_app(settings: Settings, store: StoreBase) -> web.Application:
    return create_app(settings, store=store)


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: StoreBase) -> TestClient:
    return await aiohttp_client(operator_app(Settings(sse_keepalive_seconds=0.1), store))


async def get_json(client: TestClient, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


async def feed(client: TestClient, query: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every page of the feed from position 0, following next_after."""
    events: list[dict[str, Any]] = []
    after = 0
    for _ in range(1000):
        page = await get_json(client, f"/v1/admin/events?after={after}&limit={limit}{query}")
        assert len(page["events"]) <= limit
        assert page["last_position"] >= page["next_after"] >= after
        events += page["events"]
        if page["next_after"] == after:
            return events, page["last_position"]
        after = page["next_after"]
    raise AssertionError("the feed never ended")


async def test_every_route_added_here_is_documented_for_openapi(store: StoreBase) -> None:
    added = {r.canonical for r in operator_app(Settings(), store).router.resources()}
    assert added - set(ALL_PATHS) == set()
    assert {"/v1/admin/events", "/metrics", "/healthz"} <= added


async def test_the_global_feed_pages_in_commit_order(client: TestClient, store: StoreBase) -> None:
    await seed(store, sessions_count=3)
    everything, last = await feed(client, "", limit=7)
    assert [e["position"] for e in everything] == list(range(1, 34)) and last == 33
    assert everything[0] == {
        "seq": 1,
        "position": 1,
        "session_id": "s000",
        "time": everything[0]["time"],
        "type": "session_created",
        "run_id": None,
        "title": "session 0",
        "metadata": {},
        "agent": None,  # written without POST /v1/sessions: the server's default agent
    }
    first = await get_json(client, "/v1/admin/events")
    assert len(first["events"]) == 33 and first["next_after"] == 33


async def test_filters_page_by_position_scanned_not_by_match(
    client: TestClient, store: StoreBase
) -> None:
    await seed(store, sessions_count=3)
    everything, _ = await feed(client, "", limit=5000)
    wanted = {"tool_call_started", "run_finished"}
    expected = [e for e in everything if e["type"] in wanted]
    for query in [
        "&type=tool_call_started&type=run_finished",
        "&type=tool_call_started,run_finished",
    ]:
        for limit in (1, 2, 4, 100):
            got, _ = await feed(client, query, limit)
            assert got == expected
    by_session, _ = await feed(client, "&session=s001&type=run_finished", limit=1)
    assert [(e["session_id"], e["type"]) for e in by_session] == [("s001", "run_finished")]
    # A page that stops at its limit continues right after its last match.
    page = await get_json(client, "/v1/admin/events?type=tool_call_started&limit=1")
    assert page["next_after"] == page["events"][0]["position"]
    # Past the last match, the scan still moves to the end of the log.
    tail = await get_json(
        client, f"/v1/admin/events?type=session_created&after={page['next_after']}"
    )
    assert tail["events"] == [] and tail["next_after"] == tail["last_position"] == 33


async def test_a_filter_matching_nothing_reads_a_bounded_stretch(
    client: TestClient, store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(store, sessions_count=3)
    monkeypatch.setattr(admin_api, "MAX_SCAN", 10)
    page = await get_json(client, "/v1/admin/events?type=run_failed")
    assert page == {"events": [], "next_after": 10, "last_position": 33}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=5001", "invalid_limit"),
        ("after=-1", "invalid_after"),
        ("after=x", "invalid_after"),
        ("type=bogus", "invalid_type"),
        ("session=", "invalid_session"),
    ],
)
async def test_bad_feed_parameters_are_a_400(client: TestClient, query: str, code: str) -> None:
    body = await get_json(client, f"/v1/admin/events?{query}", status=400)
    assert body["error"]["code"] == code


async def test_the_feed_needs_the_admin_token_when_one_is_set(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    settings = Settings(api_token="api", admin_token="admin")
    client = await aiohttp_client(operator_app(settings, store))
    assert (await client.get("/v1/admin/events")).status == 401
    assert (
        await client.get("/v1/admin/events", headers={"Authorization": "Bearer api"})
    ).status == 403
    ok = await client.get("/v1/admin/events", headers={"Authorization": "Bearer admin"})
    assert ok.status == 200


async def test_the_sessions_list_shows_each_status_and_pages(
    client: TestClient, store: StoreBase
) -> None:
    await seed(store, sessions_count=3)
    await store.append("s001", [RunStarted(run_id="live", prompt="go")])
    first = await get_json(client, "/v1/sessions?limit=2")
    assert [(s["id"], s["status"], s["head"], s["runs"]) for s in first["sessions"]] == [
        ("s000", "idle", 11, 1),
        ("s001", "running", 12, 2),
    ]
    assert first["sessions"][1]["active_run"] == {"run_id": "live"}
    assert first["next_after"] == "s001"
    rest = await get_json(client, "/v1/sessions?limit=2&after=s001")
    assert [s["id"] for s in rest["sessions"]] == ["s002"] and rest["next_after"] is None


async def test_healthz_reports_redis_with_its_latency(
    aiohttp_client: ClientFactory, store: StoreBase, redis_url: str
) -> None:
    settings = Settings(redis_url=redis_url, admin_token="admin-t")
    client = await aiohttp_client(operator_app(settings, store))
    body = await get_json(client, "/healthz")
    assert body == {
        "status": "ok",
        "database": {"ok": True},
        "writes": {"ok": True},
        "redis": {"ok": True},
    }
    response = await client.get("/healthz", headers={"Authorization": "Bearer admin-t"})
    body = await response.json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["redis"]["latency_ms"] >= 0


async def test_healthz_without_redis_configured_checks_only_the_database(
    client: TestClient,
) -> None:
    body = await get_json(client, "/healthz")
    assert body["status"] == "ok" and "redis" not in body


async def test_healthz_is_503_when_redis_or_the_database_is_down(
    aiohttp_client: ClientFactory, store: StoreBase, sqlite_url: str
) -> None:
    # Redis going away after start: the runner (opened while Redis was up) keeps its own lock,
    # and /healthz must report the configured Redis as down.
    dead_redis = Settings(redis_url="redis://127.0.0.1:1/0", admin_token="admin-t")
    admin = {"Authorization": "Bearer admin-t"}
    async with open_agent_runner(store) as runner:
        client = await aiohttp_client(create_app(dead_redis, store=store, runner=runner))
        public = await get_json(client, "/healthz", status=503)
        response = await client.get("/healthz", headers=admin)
        assert response.status == 503
        body = await response.json()
    # Anyone sees which component is down; only the operator sees why (hosts, auth errors).
    assert public == {
        "status": "unavailable",
        "database": {"ok": True},
        "writes": {"ok": True},
        "redis": {"ok": False},
        "failing": ["redis"],
    }
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] and not body["redis"]["ok"] and body["redis"]["error"]

    async with open_store(sqlite_url) as closing:
        down = await aiohttp_client(operator_app(Settings(api_token="t"), closing))
        await closing.close()
        assert (await get_json(down, "/healthz", status=503))["database"] == {"ok": False}
        response = await down.get("/healthz", headers={"Authorization": "Bearer t"})
        body = await response.json()
    assert not body["database"]["ok"] and body["database"]["error"]


async def test_healthz_pings_through_the_stores_own_redis_connection(
    aiohttp_client: ClientFactory, postgres_url: str, redis_url: str
) -> None:
    async with open_store(postgres_url, redis_url=redis_url) as pg:
        client = await aiohttp_client(operator_app(Settings(redis_url=redis_url), pg))
        body = await get_json(client, "/healthz")
    assert body["database"]["ok"] and body["redis"]["ok"]


async def metric(client: TestClient, name: str) -> float | None:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    family = parse(await response.text())[name]
    return family.samples[0][2] if family.samples else None


async def test_metrics_count_streams_reconnects_and_commits(
    client: TestClient, store: StoreBase
) -> None:
    await store.append("s", [SessionCreated()])
    await store.append("s", a_run("r1"))
    fresh = await client.get("/v1/sessions/s/events", headers={"Accept": "text/event-stream"})
    resumed = await client.get(
        "/v1/sessions/s/events", headers={"Accept": "text/event-stream", "Last-Event-ID": "3"}
    )
    assert await metric(client, "agentlog_sse_connections") == 2
    assert await metric(client, "agentlog_sse_reconnects_total") == 1
    fresh.close()
    resumed.close()
    for _ in range(100):
        if await metric(client, "agentlog_sse_connections") == 0:
            break
        await asyncio.sleep(0.05)
    assert await metric(client, "agentlog_sse_connections") == 0
    assert await metric(client, "agentlog_log_position") == 11
    assert await metric(client, "agentlog_active_runs") == 0
    assert await metric(client, "agentlog_group_commit_transactions_total") == 2
    response = await client.get("/metrics")
    batches = parse(await response.text())["agentlog_group_commit_batch_appends"]
    assert ("agentlog_group_commit_batch_appends_count", {}, 2.0) in batches.samples
    # The projector catches up with the 11 events written: its lag falls to 0.
    for _ in range(100):
        if await metric(client, "agentlog_projection_lag_events") == 0:
            break
        await asyncio.sleep(0.05)
    assert await metric(client, "agentlog_projection_lag_events") == 0
