"""The live page at `/`, in headless Chromium against a real `agentlog serve` process: it shows a
run as it streams, and after the server is killed and restarted mid-run it reconnects by itself
and shows the whole run ended, with no tool left spinning. Plus the page's routes themselves."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from agentlog.domain.events import EVENT_TYPES
from agentlog.infra.agent.run.runner import agent_process_ids
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings
from tests.support.browser import Page, chromium_available, open_browser
from tests.support.server import ServerProcess

SESSION = "web-demo"

# A tool part in one of these states shows a spinner: the run is still waiting on it.
WAITING = "input-streaming", "input-available"
RUNNING_TOOL = (
    "document.querySelector('[data-testid=tool-part][data-state=input-available]"
    " [data-testid=spinner]') !== null"
)
NO_WAITING_PART = (
    "window.agentlog.messages.every(m => m.parts.every("
    "p => !['input-streaming', 'input-available'].includes(p.state)))"
    " && document.querySelector('[data-testid=spinner]') === null"
)


def _need_chromium() -> None:
    if not chromium_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed")


def _env(sqlite_url: str, **extra: str) -> dict[str, str]:
    return {
        "AGENTLOG_DATABASE_URL": sqlite_url,
        "AGENTLOG_HEARTBEAT_SECONDS": "0.5",
        "AGENTLOG_RUN_LOCK_TTL_SECONDS": "2",
        "AGENTLOG_SSE_RETRY_MS": "200",
        **extra,
    }


# A heartbeat logged after the tool started: the run is alive while the tool works.
HEARTBEAT_DURING_TOOL = (
    "(() => { const seqs = window.agentlog.events; "
    "const started = seqs.findIndex(e => e.type === 'tool_call_started'); "
    "return started >= 0 && seqs.slice(started).some(e => e.type === 'heartbeat'); })()"
)


def _row(event_type: str) -> str:
    return f"document.querySelector('[data-testid=event-row][data-type={event_type}]') !== null"


def _listed_as(status: str) -> str:
    """The sessions list shows the session with this status."""
    return (
        f"document.querySelector('[data-session={SESSION}] [data-testid=session-status]')"
        f"?.textContent === '{status}'"
    )


async def _open_page(page: Page, url: str) -> None:
    await page.call(
        "Emulation.setDeviceMetricsOverride",
        width=1440,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    await page.navigate(url)
    await page.wait_for("window.agentlog && window.agentlog.opens >= 1")


DUMP = """JSON.stringify({
  opens: window.agentlog.opens, connected: window.agentlog.connected,
  errors: window.agentlog.errors, lastSeq: window.agentlog.lastSeq,
  types: window.agentlog.events.map(e => e.seq + ':' + e.type),
  sessions: window.agentlog.sessions.map(s => s.id + ':' + s.status),
  parts: window.agentlog.messages.flatMap(m => m.parts.map(p => p.type + ':' + p.state)),
})"""


async def _wait(page: Page, condition: str, timeout: float = 30) -> None:
    """page.wait_for, saying what the page showed when it times out."""
    try:
        await page.wait_for(condition, timeout=timeout)
    except TimeoutError:
        shown = await page.evaluate(DUMP)
        raise AssertionError(f"{condition!r} never held; the page had {shown}") from None


async def _tool_parts(page: Page) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = await page.evaluate(
        "window.agentlog.messages.flatMap(m => m.parts)"
        ".filter(p => p.type === 'dynamic-tool' || p.type.startsWith('tool-'))"
    )
    return parts


async def _start(http: aiohttp.ClientSession, server: ServerProcess, prompt: str) -> str:
    async with http.post(f"{server.url}/v1/sessions/{SESSION}/runs", json={"prompt": prompt}) as r:
        assert r.status == 202, await r.text()
        run_id: str = (await r.json())["run_id"]
        return run_id


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def _create_session(http: aiohttp.ClientSession, server: ServerProcess) -> None:
    body = {"id": SESSION, "title": "Web page demo"}
    async with http.post(f"{server.url}/v1/sessions", json=body) as response:
        assert response.status == 201


@pytest.mark.slow
async def test_the_page_shows_a_run_as_it_streams(
    tmp_path: Path, sqlite_url: str, http: aiohttp.ClientSession
) -> None:
    _need_chromium()
    server = ServerProcess(tmp_path, _env(sqlite_url)).start()
    try:
        await _create_session(http, server)
        async with open_browser() as page:
            await _open_page(page, f"{server.url}/#session={SESSION}")
            await _wait(page, _listed_as("idle"))
            run_id = await _start(
                http, server, "[scenario:long-tool] Run the slow operation for 3 seconds"
            )
            # While the tool runs: a spinner on its part, heartbeats arriving in the log.
            await _wait(page, RUNNING_TOOL, timeout=30)
            await _wait(page, HEARTBEAT_DURING_TOOL, timeout=10)
            assert await page.evaluate("window.agentlog.runActive") is True
            [tool] = await _tool_parts(page)
            assert tool["toolName"] == "mcp__demo__slow_op"
            assert tool["input"] == {"seconds": 3}
            await page.screenshot(str(tmp_path / "streaming.png"))

            # Then the result and the final answer, and the run marked finished.
            await _wait(page, _row("run_finished"), timeout=30)
            await _wait(
                page,
                "document.querySelector('[data-testid=run-status]')?.textContent === 'finished'",
            )
            await _wait(page, NO_WAITING_PART)
            await _wait(page, _listed_as("idle"))
            [tool] = await _tool_parts(page)
            assert tool["state"] == "output-available"
            assert tool["output"] == "waited 3 s"
            output = await page.evaluate(
                "document.querySelector('[data-testid=tool-part] [data-testid=tool-output]')"
                ".textContent"
            )
            assert output == "waited 3 s"
            texts = await page.evaluate(
                "[...document.querySelectorAll('[data-testid=text-part]')].map(e => e.textContent)"
            )
            assert any("The slow operation is done" in t for t in texts), texts
            # What the run cost: tokens, and no price for the scripted model.
            run_cost = await page.evaluate(
                "document.querySelector('[data-testid=run-cost]')?.textContent"
            )
            assert run_cost is not None and run_cost.endswith("scripted model, no cost")
            assert " in / " in run_cost and not run_cost.startswith("0 in")
            await _wait(
                page,
                f"document.querySelector('[data-session={SESSION}] [data-testid=session-cost]')"
                "?.textContent === " + json.dumps(run_cost),
            )
            await page.screenshot(str(tmp_path / "finished.png"))

            # The log on the page is the session's log: every seq once, in order.
            async with http.get(f"{server.url}/v1/sessions/{SESSION}") as r:
                head = (await r.json())["head"]
            await _wait(page, f"window.agentlog.lastSeq === {head}")
            seqs = await page.evaluate("window.agentlog.events.map(e => e.seq)")
            assert seqs == list(range(1, head + 1))
            runs = await page.evaluate(
                "[...new Set(window.agentlog.events.map(e => e.run_id).filter(Boolean))]"
            )
            assert runs == [run_id]
    finally:
        server.stop()


@pytest.mark.slow
async def test_after_a_restart_mid_run_the_page_shows_the_whole_run_and_no_stuck_tool(
    tmp_path: Path, sqlite_url: str, http: aiohttp.ClientSession
) -> None:
    _need_chromium()
    # The run is recorded abandoned, as with continuation off (a turn that goes on after a
    # crash: tests/faults/test_turn_survives_its_server.py).
    env = _env(sqlite_url, AGENTLOG_CONTINUE_AFTER_CRASH="off")
    server = ServerProcess(tmp_path, env).start()
    try:
        await _create_session(http, server)
        async with open_browser() as page:
            await _open_page(page, f"{server.url}/#session={SESSION}")
            run_id = await _start(
                http, server, "[scenario:long-tool] Run the slow operation for 20 seconds"
            )
            await _wait(page, RUNNING_TOOL, timeout=30)
            await _wait(page, HEARTBEAT_DURING_TOOL, timeout=10)
            assert await page.evaluate("window.agentlog.opens") == 1

            server.kill()  # kill -9 while the tool runs: no shutdown hook writes anything
            for pid in agent_process_ids(run_id):  # the dead server's orphaned agent CLI
                os.kill(pid, signal.SIGKILL)
            await _wait(page, "window.agentlog.connected === false", timeout=10)
            server = ServerProcess(tmp_path, env, server.port).start()

            # The page reconnects by itself; the restarted server's sweeper closes the run.
            await _wait(page, "window.agentlog.opens >= 2", timeout=30)
            await _wait(page, _row("run_abandoned"), timeout=30)
            await _wait(page, _row("tool_call_failed"), timeout=10)
            await _wait(
                page,
                "document.querySelector('[data-testid=run-status]')?.textContent === 'abandoned'",
            )
            await _wait(page, NO_WAITING_PART)
            await _wait(page, _listed_as("abandoned"))
            await page.screenshot(str(tmp_path / "after-restart.png"))

            [tool] = await _tool_parts(page)
            assert tool["state"] == "output-error"
            assert tool["errorText"].startswith("interrupted")
            shown = await page.evaluate(
                "document.querySelector('[data-testid=tool-part]').dataset.state"
            )
            assert shown == "output-error"
            error = await page.evaluate(
                "document.querySelector('[data-testid=tool-part] [data-testid=tool-error]')"
                ".textContent"
            )
            assert error.startswith("interrupted")
            assert not any(
                part.get("state") in WAITING
                for message in await page.evaluate("window.agentlog.messages")
                for part in message["parts"]
            )
            # The log on the page is complete across the restart: every seq once, in order.
            async with http.get(f"{server.url}/v1/sessions/{SESSION}") as r:
                session = await r.json()
            assert session["status"] == "abandoned"
            await _wait(page, f"window.agentlog.lastSeq === {session['head']}")
            seqs = await page.evaluate("window.agentlog.events.map(e => e.seq)")
            assert seqs == list(range(1, session["head"] + 1))
    finally:
        server.stop()


@pytest.mark.slow
async def test_a_subagents_calls_show_inside_the_call_that_started_it(
    tmp_path: Path, sqlite_url: str, http: aiohttp.ClientSession
) -> None:
    _need_chromium()
    tools = "Read,Glob,Grep,Agent,mcp__demo__add,mcp__demo__slow_op"
    server = ServerProcess(tmp_path, _env(sqlite_url, AGENTLOG_ALLOWED_TOOLS=tools)).start()
    try:
        await _create_session(http, server)
        async with open_browser() as page:
            await _open_page(page, f"{server.url}/#session={SESSION}")
            await _wait(page, _listed_as("idle"))
            await _start(http, server, "[scenario:subagent] Ask a subagent to add and read")
            await _wait(
                page,
                "document.querySelector('[data-testid=run-status]')?.textContent === 'finished'",
                timeout=30,
            )
            agent = next(p for p in await _tool_parts(page) if p["type"] == "tool-Agent")
            inside = await page.evaluate(
                f"[...document.querySelectorAll('[data-testid=subagent][data-parent="
                f'"{agent["toolCallId"]}"] [data-testid=tool-part]\')].map(e => e.dataset.tool)'
            )
            assert sorted(inside) == ["Read", "mcp__demo__add"]
            # The subagent box sits inside the Agent call's own part.
            outer = await page.evaluate(
                "document.querySelector('[data-testid=subagent]')"
                ".closest('[data-testid=tool-part]').dataset.tool"
            )
            assert outer == "Agent"
            await page.screenshot(str(tmp_path / "subagent.png"))
    finally:
        server.stop()


@pytest.mark.slow
async def test_with_a_token_the_page_streams_with_a_read_token(
    tmp_path: Path, sqlite_url: str, http: aiohttp.ClientSession
) -> None:
    """EventSource cannot send Authorization: with AGENTLOG_API_TOKEN set the page reads the
    token from `#token=`, mints a read-only token for the session and streams with it as
    `?access_token=`; no token reaches the server's log."""
    _need_chromium()
    env = _env(sqlite_url, AGENTLOG_API_TOKEN="s3cret", AGENTLOG_LOG_LEVEL="debug")
    server = ServerProcess(tmp_path, env).start()
    auth = {"Authorization": "Bearer s3cret"}
    try:
        body = {"id": SESSION, "title": "Token demo"}
        async with http.post(f"{server.url}/v1/sessions", json=body, headers=auth) as r:
            assert r.status == 201
        async with open_browser() as page:
            await _open_page(page, f"{server.url}/#session={SESSION}&token=s3cret")
            await _wait(page, "window.agentlog.opens >= 1", timeout=10)
            assert await page.evaluate("window.agentlog.mode") == "sse"
            assert await page.evaluate("location.hash") == f"#session={SESSION}"  # token kept aside
            event = {"type": "custom", "name": "note", "data": {"hello": "world"}}
            async with http.post(
                f"{server.url}/v1/sessions/{SESSION}/events",
                json={"events": [event]},
                headers=auth,
            ) as r:
                assert r.status == 200
            await _wait(page, _row("custom"), timeout=10)
            await _wait(
                page,
                "document.querySelector('[data-testid=data-part]')?.textContent.includes('world')",
            )
            assert await page.evaluate("window.agentlog.events.map(e => e.seq)") == [1, 2]
            assert await page.evaluate("window.agentlog.errors") == []
            assert await page.evaluate("window.agentlog.mode") == "sse"
    finally:
        server.stop()
    log = server.log.read_text()
    assert "access_token=REDACTED" in log  # the stream was opened with a token in its URL
    assert "s3cret" not in log and "agl1." not in log


async def test_the_page_and_its_assets_are_served_and_nothing_else(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    async with open_store(f"sqlite:///{tmp_path}/a.db") as store:
        client = await aiohttp_client(create_app(Settings(api_token="t"), store=store))
        page = await client.get("/")  # public, like /healthz: the page asks for the token
        assert page.status == 200
        assert page.content_type == "text/html"
        assert page.headers["Cache-Control"] == "no-cache"
        html = await page.text()
        assert "/static/app.js" in html and "/static/style.css" in html
        assert "http://" not in html and "https://" not in html  # nothing from elsewhere
        for name, content_type in [("app.js", "text/javascript"), ("style.css", "text/css")]:
            asset = await client.get(f"/static/{name}")
            assert asset.status == 200, name
            assert asset.content_type == content_type
            assert asset.charset == "utf-8"
            assert asset.headers["Cache-Control"] == "no-cache"
        for path in [
            "/static/../web_view.py",
            "/static/..%2Fweb_view.py",
            "/static/%2e%2e%2fapp.py",
            "/static/..%5Cweb_view.py",
            "/static/.hidden",
            "/static/missing.js",
            "/static/web",
            "/static/",
        ]:
            response = await client.get(URL(path, encoded=True))
            assert response.status == 404, path
        assert (await client.get("/v1/sessions")).status == 401  # the API still needs it


@pytest.mark.slow
async def test_after_a_regenerate_the_page_shows_the_branch_and_logs_the_rewind(
    tmp_path: Path, sqlite_url: str, http: aiohttp.ClientSession
) -> None:
    _need_chromium()
    server = ServerProcess(tmp_path, _env(sqlite_url)).start()
    try:
        await _create_session(http, server)
        async with open_browser() as page:
            await _open_page(page, f"{server.url}/#session={SESSION}")
            first = await _start(http, server, "Please remember the number 41")
            await _wait(page, _row("run_finished"), timeout=30)
            body = {"from_message_id": first}
            async with http.post(f"{server.url}/v1/sessions/{SESSION}/runs", json=body) as r:
                assert r.status == 202, await r.text()
                again = (await r.json())["run_id"]
            await _wait(page, _row("conversation_rewound"), timeout=30)
            await _wait(
                page,
                f"window.agentlog.messages.map(m => m.id).join() === '{again}:user,{again}'"
                " && document.querySelectorAll('[data-testid=run-status]').length === 1"
                " && document.querySelector('[data-testid=run-status]').textContent === 'finished'",
            )
            summary = await page.evaluate(
                "document.querySelector('[data-testid=event-row][data-type=conversation_rewound]"
                " .summary').textContent"
            )
            async with http.get(f"{server.url}/v1/sessions/{SESSION}/events") as r:
                events = (await r.json())["events"]
            [rewound] = [e for e in events if e["type"] == "conversation_rewound"]
            assert summary == (
                f"from_message: back to seq {rewound['to_seq']}, "
                f"seqs {rewound['to_seq'] + 1}..{rewound['seq'] - 1} set aside"
            )
    finally:
        server.stop()


def test_the_page_listens_for_every_event_type() -> None:
    """EventSource delivers a named event only to a listener for its name: a type the page
    does not list never reaches its log."""
    script = (Path(__file__).parents[2] / "transport" / "web" / "app.js").read_text()
    listed = re.search(r"const EVENT_TYPES = \[(.*?)\];", script, flags=re.S)
    assert listed is not None
    assert sorted(re.findall(r'"([a-z_]+)"', listed.group(1))) == sorted(EVENT_TYPES)
