"""Tool approval over HTTP against real `agentlog serve` processes: the answer reaches the
agent and the tool runs (or is refused) exactly once, also after kill -9 of the server that
asked, on a restarted server, and on the other of two PostgreSQL+Redis instances."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from tests.e2e.test_cli_inspect import agentlog
from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    all_events,
    create_session,
    get_json,
    http,
    orphans,
    servers,
    start,
    start_run,
    wait_until,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

PUBLISH = '[scenario:approval] publish "hello world"'
TOOL = "mcp__demo__publish"


async def pending(client: aiohttp.ClientSession, base: str, session_id: str) -> list[Any]:
    session = await get_json(client, f"{base}/v1/sessions/{session_id}")
    if session["status"] != "awaiting_approval":
        return []
    return list(session["pending_approvals"])


async def waiting_alone(client: aiohttp.ClientSession, base: str, session_id: str) -> list[Any]:
    """The pending approvals once the turn stopped (after the grace): no run holds them."""

    async def check() -> list[Any] | None:
        session = await get_json(client, f"{base}/v1/sessions/{session_id}")
        if session["status"] == "awaiting_approval" and session["active_run"] is None:
            return list(session["pending_approvals"])
        return None

    return list(await wait_until(check, 60, what="the session to await approval alone"))


async def answer(
    client: aiohttp.ClientSession, base: str, session_id: str, approval_id: str, **body: Any
) -> tuple[int, Any]:
    url = f"{base}/v1/sessions/{session_id}/approvals/{approval_id}"
    async with client.post(url, json=body) as response:
        return response.status, await response.json()


async def settled(client: aiohttp.ClientSession, base: str, session_id: str) -> list[Any]:
    """The log once the approved call ended and no run is open any more."""

    async def done() -> list[Any] | None:
        session = await get_json(client, f"{base}/v1/sessions/{session_id}")
        events = await all_events(client, base, session_id)
        ended = any(
            e["type"] in ("tool_call_succeeded", "tool_call_denied")
            and e["tool_call_id"].startswith("toolu_")
            for e in events
        )
        return events if ended and session["active_run"] is None else None

    return list(await wait_until(done, 90, what="the continued turn to end"))


def the_part(messages: dict[str, Any]) -> dict[str, Any]:
    return next(p for m in messages["messages"] for p in m["parts"] if p.get("toolName") == TOOL)


def assert_ran_once(events: list[dict[str, Any]], call_id: str) -> None:
    outputs = [
        e for e in events if e.get("tool_call_id") == call_id and e["type"] == "tool_call_succeeded"
    ]
    assert len(outputs) == 1, outputs
    assert "published: hello world" in str(outputs[0]["output"])
    of_call = [
        e["type"]
        for e in events
        if e.get("tool_call_id") == call_id and e["type"] != "tool_input_delta"
    ]
    assert of_call == [
        "tool_call_started",
        "tool_approval_requested",
        "tool_approval_responded",
        "tool_call_succeeded",
    ]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert sum(e["type"] == "tool_approval_responded" for e in events) == 1


async def test_approve_and_deny_over_http_with_exactly_one_answer(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    server = start(servers, tmp_path, {"AGENTLOG_APPROVAL_GRACE_SECONDS": "0.5"})
    base = server.url
    async with asyncio.timeout(150):
        sid = await create_session(http, base)
        await start_run(http, base, sid, PUBLISH)
        [asked] = await wait_until(lambda: pending(http, base, sid), 60, what="the approval")
        assert asked["tool_name"] == TOOL and asked["input"] == {"text": "hello world"}

        async def deferred() -> Any:
            session = await get_json(http, f"{base}/v1/sessions/{sid}")
            return session if session["active_run"] is None else None

        # After the short grace the turn stops: the session waits holding no run.
        session = await wait_until(deferred, 30, what="the turn to stop")
        assert session["status"] == "awaiting_approval"
        assert [a["approval_id"] for a in session["pending_approvals"]] == [asked["approval_id"]]
        messages = await get_json(http, f"{base}/v1/sessions/{sid}/messages")
        part = the_part(messages)
        assert part["state"] == "approval-requested"
        assert part["approval"] == {"id": asked["approval_id"]}
        # Waiting is not running: a new prompt waits behind the approval, whose answer's
        # turn goes first (tests/e2e/test_send_while_running.py runs the whole sequence).
        async with http.post(f"{base}/v1/sessions/{sid}/runs", json={"prompt": "hi"}) as r:
            assert r.status == 202
            queued = await r.json()
            assert (queued["status"], queued["behind_run_id"]) == ("queued", None)
        status, body = await answer(http, base, sid, "approval_nope", approved=True)
        assert status == 404 and body["error"]["code"] == "unknown_approval"
        status, body = await answer(http, base, sid, asked["approval_id"], approved="yes")
        assert status == 400

        status, first = await answer(
            http, base, sid, asked["approval_id"], approved=True, reason="ok"
        )
        assert status == 202 and first["run"]["run_id"].startswith("run_")
        assert first["approved"] is True and first["reason"] == "ok"
        events = await settled(http, base, sid)
        assert_ran_once(events, asked["tool_call_id"])
        status, again = await answer(http, base, sid, asked["approval_id"], approved=True)
        assert status == 200 and again["seq"] == first["seq"] and again["reason"] == "ok"
        assert again["run"] is None
        status, body = await answer(http, base, sid, asked["approval_id"], approved=False)
        assert status == 409 and body["error"]["code"] == "approval_answered"
        part = the_part(await get_json(http, f"{base}/v1/sessions/{sid}/messages"))
        assert part["state"] == "output-available"
        assert part["approval"] == {"id": asked["approval_id"], "approved": True, "reason": "ok"}

        # Denied: the model is told, the part is output-denied, the run finishes normally.
        other = await create_session(http, base)
        await start_run(http, base, other, PUBLISH)
        [asked] = await waiting_alone(http, base, other)
        status, _ = await answer(
            http, base, other, asked["approval_id"], approved=False, reason="no"
        )
        assert status == 202
        events = await settled(http, base, other)
        assert not [e for e in events if e["type"] == "tool_call_succeeded"]
        finished = [e for e in events if e["type"] == "run_finished"]
        assert len(finished) == 2 and not finished[-1]["is_error"]
        assert "not allowed to publish" in finished[-1]["result"]
        part = the_part(await get_json(http, f"{base}/v1/sessions/{other}/messages"))
        assert part["state"] == "output-denied"
        assert part["approval"] == {"id": asked["approval_id"], "approved": False, "reason": "no"}
    report = agentlog(["verify"], f"sqlite:///{tmp_path / 'agentlog.db'}", tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr


async def test_the_answer_reaches_the_agent_after_kill_9_of_the_server_that_asked(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    postgres_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
    orphans: list[int],  # noqa: F811
) -> None:
    # A long grace: the asking server is killed while its hook still waits in-process.
    env = {
        "AGENTLOG_DATABASE_URL": postgres_url,
        "AGENTLOG_REDIS_URL": "",
        "AGENTLOG_APPROVAL_GRACE_SECONDS": "600",
    }
    first = start(servers, tmp_path, env)
    async with asyncio.timeout(180):
        sid = await create_session(http, first.url)
        run_id = await start_run(http, first.url, sid, PUBLISH)
        [asked] = await wait_until(lambda: pending(http, first.url, sid), 60, what="the approval")
        orphans.extend(agent_process_ids(run_id))
        first.kill()
        restarted = start(servers, tmp_path, env)
        # Still pending on the restarted server, the part still asks (not "interrupted").
        part = the_part(await get_json(http, f"{restarted.url}/v1/sessions/{sid}/messages"))
        assert part["state"] == "approval-requested"
        status, body = await answer(http, restarted.url, sid, asked["approval_id"], approved=True)
        assert status in (200, 202), body  # 200: the dead run's lease has yet to expire
        events = await settled(http, restarted.url, sid)
        assert_ran_once(events, asked["tool_call_id"])
        assert any(e["type"] == "run_abandoned" and e["run_id"] == run_id for e in events)
        assert not any(
            e["type"] == "tool_call_failed" and e["tool_call_id"] == asked["tool_call_id"]
            for e in events
        )
    report = agentlog(["verify"], postgres_url, tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr


async def test_the_answer_given_to_the_other_of_two_postgres_and_redis_instances(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    env = {
        "AGENTLOG_DATABASE_URL": postgres_url,
        "AGENTLOG_REDIS_URL": redis_url,
        "AGENTLOG_APPROVAL_GRACE_SECONDS": "0.5",
    }
    a = start(servers, tmp_path, env)
    b = start(servers, tmp_path, env)
    async with asyncio.timeout(150):
        sid = await create_session(http, a.url)
        await start_run(http, a.url, sid, PUBLISH)
        [asked] = await waiting_alone(http, b.url, sid)
        status, body = await answer(http, b.url, sid, asked["approval_id"], approved=True)
        assert status == 202, body
        events = await settled(http, a.url, sid)
        assert_ran_once(events, asked["tool_call_id"])
        # Both instances serve the same conversation.
        assert await get_json(http, f"{a.url}/v1/sessions/{sid}/messages") == await get_json(
            http, f"{b.url}/v1/sessions/{sid}/messages"
        )
    report = agentlog(["verify"], postgres_url, tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr


async def test_who_answered_comes_from_the_session_token_that_answered(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {"AGENTLOG_API_TOKEN": "api-secret", "AGENTLOG_APPROVAL_GRACE_SECONDS": "0.3"}
    server = start(servers, tmp_path, env)
    base = server.url
    api = {"Authorization": "Bearer api-secret"}
    async with aiohttp.ClientSession(headers=api) as client, asyncio.timeout(120):
        sid = await create_session(client, base)
        await start_run(client, base, sid, PUBLISH)
        [asked] = await waiting_alone(client, base, sid)
        async with client.post(f"{base}/v1/sessions/{sid}/tokens", json={"scope": "write"}) as r:
            assert r.status == 201, await r.text()
            token = (await r.json())["token"]
        url = f"{base}/v1/sessions/{sid}/approvals/{asked['approval_id']}"
        async with aiohttp.ClientSession() as holder:
            headers = {"Authorization": f"Bearer {token}"}
            async with holder.post(url, json={"approved": True}, headers=headers) as r:
                body = await r.json()
                assert r.status == 202, body
        assert body["responder"] == "session token (write)"
        events = await settled(client, base, sid)
        [answered] = [e for e in events if e["type"] == "tool_approval_responded"]
        assert answered["responder"] == "session token (write)"
