"""In headless Chromium: a page on another origin frames the live page (issue 22: one click on a
framed Approve ran a Bash call); the browser refuses to show it, because every answer says
`X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors 'none'`."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_browser_attack import need_chromium, page_server
from tests.support.browser import open_browser
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

FRAMING = """<!doctype html><title>win a prize</title>
<iframe id="victim" src=%(src)s width="800" height="600"></iframe>
<script>
document.getElementById("victim").onload = () => { window.loaded = true; };
</script>"""

# Is the live page's own markup rendered inside that frame? Evaluated in the frame's own world.
RENDERED = "document.querySelector('[data-testid=sessions]') !== null"


async def test_a_page_on_another_origin_cannot_show_the_live_page_in_a_frame(
    tmp_path: Path, sqlite_url: str
) -> None:
    need_chromium()
    server = ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url}).start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            page_server(FRAMING % {"src": json.dumps(server.url + "/")}) as port,
            open_browser() as page,
        ):
            async with http.get(server.url + "/") as r:  # served, and rendered unframed
                assert r.status == 200
                assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            # Every answer says so, not just the page: JSON, errors, streams.
            for path in ("/v1/sessions", "/v1/sessions/none", "/v1/sessions/none/events"):
                async with http.get(server.url + path) as r:
                    assert r.headers["X-Frame-Options"] == "DENY", path
                    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
            # Another origin (its own port) on the same site, so Chromium keeps the frame in
            # this tab's process, where DevTools can look inside it.
            await page.navigate(f"http://127.0.0.1:{port}/")
            await page.wait_for("window.loaded === true", timeout=30)
            tree = await page.call("Page.getFrameTree")
            (child,) = tree["frameTree"]["childFrames"]
            world = await page.call("Page.createIsolatedWorld", frameId=child["frame"]["id"])
            shown = await page.call(
                "Runtime.evaluate",
                expression=RENDERED,
                contextId=world["executionContextId"],
                returnByValue=True,
            )
            assert shown["result"]["value"] is False, child["frame"]
    finally:
        server.stop()
