"""The live page in headless Chromium: a pending approval shows Approve / Deny on its tool card,
also after a reload, and approving it runs the tool; Stop ends the active run; any event of the
log column opens as its JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_web_view import (  # noqa: F401 - a fixture
    SESSION,
    _create_session,
    _env,
    _need_chromium,
    _open_page,
    _row,
    _start,
    _tool_parts,
    _wait,
    http,
)
from tests.support.browser import open_browser
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

APPROVE_SHOWN = "document.querySelector('[data-testid=tool-part] [data-testid=approve]') !== null"


async def test_a_pending_approval_shows_on_its_card_after_a_reload_and_approving_runs_the_tool(
    tmp_path: Path,
    sqlite_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    _need_chromium()
    server = ServerProcess(
        tmp_path, _env(sqlite_url, AGENTLOG_APPROVAL_GRACE_SECONDS="0.5")
    ).start()
    try:
        await _create_session(http, server)
        async with open_browser() as page:
            url = f"{server.url}/#session={SESSION}"
            await _open_page(page, url)
            await _start(http, server, '[scenario:approval] publish "hello world"')
            await _wait(page, APPROVE_SHOWN, timeout=60)
            await _wait(page, _row("run_finished"), timeout=30)  # the turn stopped to wait
            await page.screenshot(str(tmp_path / "approval.png"))

            # A reload (a new page, as after closing the tab) shows the same pending approval.
            await page.navigate("about:blank")
            await _open_page(page, url)
            await _wait(page, APPROVE_SHOWN, timeout=30)
            [tool] = await _tool_parts(page)
            assert tool["state"] == "approval-requested"
            assert tool["input"] == {"text": "hello world"}
            state = await page.evaluate(
                "document.querySelector('[data-testid=tool-part] [data-testid=tool-state]')"
                ".textContent"
            )
            assert state == "awaiting approval"
            # No spinner: the call waits on a person, not on a process.
            assert await page.evaluate("document.querySelector('[data-testid=spinner]')") is None

            await page.evaluate(
                "document.querySelector('[data-testid=approval-reason]').value = 'ship it';"
                "document.querySelector('[data-testid=approve]').click()"
            )
            await _wait(page, "window.agentlog.answers.length === 1")
            answer = await page.evaluate("window.agentlog.answers[0]")
            assert answer["approved"] is True and answer["reason"] == "ship it"
            await _wait(
                page,
                "window.agentlog.messages.flatMap(m => m.parts)"
                ".some(p => p.toolName === 'mcp__demo__publish' && p.state === 'output-available')",
                timeout=60,
            )
            await _wait(
                page,
                "[...document.querySelectorAll('[data-testid=text-part]')]"
                ".some(e => e.textContent.includes('published: hello world'))",
                timeout=30,
            )
            assert await page.evaluate(APPROVE_SHOWN) is False

            # Any event of the log opens as its JSON, exactly as the API returns it.
            await _wait(page, _row("tool_approval_responded"))
            seq = await page.evaluate(
                "(() => { const row = document.querySelector("
                "'[data-testid=event-row][data-type=tool_approval_responded]');"
                " row.click(); return Number(row.dataset.seq); })()"
            )
            shown = await page.evaluate(
                "document.querySelector('[data-testid=event-row][data-type="
                "tool_approval_responded] [data-testid=event-json]').textContent"
            )
            async with http.get(
                f"{server.url}/v1/sessions/{SESSION}/events?offset={seq - 1}&limit=1"
            ) as response:
                [event] = (await response.json())["events"]
            assert json.loads(shown) == event
            assert event["approved"] is True
            # Every event of the log is in the column, once, in order.
            async with http.get(f"{server.url}/v1/sessions/{SESSION}") as response:
                head = (await response.json())["head"]
            await _wait(page, f"window.agentlog.lastSeq === {head}")
            seqs = await page.evaluate("window.agentlog.events.map(e => e.seq)")
            assert seqs == list(range(1, head + 1))
    finally:
        server.stop()


async def test_stop_ends_the_active_run(
    tmp_path: Path,
    sqlite_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    _need_chromium()
    server = ServerProcess(tmp_path, _env(sqlite_url)).start()
    try:
        await _create_session(http, server)
        async with open_browser() as page:
            await _open_page(page, f"{server.url}/#session={SESSION}")
            run_id = await _start(
                http, server, "[scenario:long-tool] Run the slow operation for 60 seconds"
            )
            await _wait(page, "document.querySelector('[data-testid=stop]') !== null", timeout=60)
            await page.evaluate("document.querySelector('[data-testid=stop]').click()")
            await _wait(page, _row("run_cancelled"), timeout=60)
            await _wait(page, "document.querySelector('[data-testid=stop]') === null")
            ended = await page.evaluate(
                "window.agentlog.events.filter(e => e.type === 'run_cancelled').map(e => e.run_id)"
            )
            assert ended == [run_id]
    finally:
        server.stop()


def test_the_page_listens_for_every_event_type_the_log_holds() -> None:
    # EventSource delivers a named event only to a listener for that name: a type missing
    # from the page's list would silently vanish from its log column.
    from agentlog.domain.events import EVENT_TYPES
    from tests.conftest import ROOT

    source = (ROOT / "transport" / "web" / "app.js").read_text()
    listed = source.split("const EVENT_TYPES = [", 1)[1].split("];", 1)[0]
    assert sorted(re.findall(r'"([a-z_]+)"', listed)) == sorted(EVENT_TYPES)
