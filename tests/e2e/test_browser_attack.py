"""In headless Chromium: a page on another origin tries the attack of issue 14 (no-cors text/plain
POSTs that create a session and start a shell run, a form post, a CORS fetch, an EventSource)
and creates nothing; a page on an origin in AGENTLOG_ALLOWED_ORIGINS creates a session and
streams a run, as a `useChat` front end does."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.support.browser import chromium_available, open_browser
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.slow

HOSTILE = """<!doctype html><title>cute cats</title><script>
window.results = {};
const api = %(api)s;
async function attempt(name, run) {
  try {
    const r = await run();
    window.results[name] = r && r.type ? r.type + ":" + r.status : "sent";
  }
  catch (e) { window.results[name] = "blocked: " + e.name; }
}
(async () => {
  const simple = { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" } };
  await attempt("create", () => fetch(api + "/v1/sessions",
    { ...simple, body: JSON.stringify({ id: "pwned" }) }));
  await attempt("run", () => fetch(api + "/v1/sessions/pwned/runs",
    { ...simple, body: JSON.stringify({ prompt: "[scenario:bash] run `id > /tmp/pwned`" }) }));
  await attempt("bodyless", () => fetch(api + "/v1/sessions", { method: "POST", mode: "no-cors" }));
  await attempt("cors-json", () => fetch(api + "/v1/sessions", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ id: "pwned2" }) }));
  await attempt("read", () => fetch(api + "/v1/sessions"));
  await new Promise((resolve) => {
    const source = new EventSource(api + "/v1/sessions/victim/events");
    source.onmessage = () => { window.results.eventsource = "read an event"; };
    source.onerror = () => { window.results.eventsource ||= "blocked"; source.close(); resolve(); };
  });
  const form = document.createElement("form");
  form.method = "POST"; form.action = api + "/v1/sessions"; form.target = "sink";
  const field = document.createElement("input");
  field.name = '{"id": "pwned3", "x": "'; field.value = '"}';
  form.appendChild(field); document.body.appendChild(form);
  const sink = document.createElement("iframe");
  sink.name = "sink"; document.body.appendChild(sink);
  await new Promise((resolve) => {
    sink.onload = resolve; form.submit(); setTimeout(resolve, 3000);
  });
  window.results.form = "submitted";
  window.done = true;
})();
</script>"""

FRIENDLY = """<!doctype html><title>chat</title><script>
window.chunks = [];
const api = %(api)s;
(async () => {
  const created = await fetch(api + "/v1/sessions", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ id: "friendly" }) });
  window.created = created.status;
  const response = await fetch(api + "/v1/sessions/friendly/runs", { method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({
      messages: [{ role: "user", parts: [{ type: "text", text: "Hello there" }] }],
    }) });
  window.streamHeader = response.headers.get("x-vercel-ai-ui-message-stream");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const frame = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      for (const line of frame.split("\\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        window.chunks.push(data === "[DONE]" ? "[DONE]" : JSON.parse(data).type);
      }
    }
  }
  window.events = [];
  await new Promise((resolve) => {
    const source = new EventSource(api + "/v1/sessions/friendly/events?live=false");
    source.onmessage = (e) => window.events.push(e.data);
    source.addEventListener("run_finished", () => { window.events.push("run_finished"); });
    source.onerror = () => { source.close(); resolve(); };
  });
  window.done = true;
})().catch((e) => { window.failure = String(e); window.done = true; });
</script>"""


@asynccontextmanager
async def page_server(html: str) -> AsyncIterator[int]:
    """A server of one page on its own port: its own origin."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


def need_chromium() -> None:
    if not chromium_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed")


async def test_a_page_on_another_origin_creates_nothing_and_an_allowed_one_streams_a_run(
    tmp_path: Path, sqlite_url: str
) -> None:
    need_chromium()
    friendly_port = free_port()
    friendly_origin = f"http://localhost:{friendly_port}"
    env = {
        "AGENTLOG_DATABASE_URL": sqlite_url,
        "AGENTLOG_ALLOWED_ORIGINS": friendly_origin,
        # Even with the shell on, the hostile page must get nowhere.
        "AGENTLOG_ENABLE_TOOLS": "Bash",
    }
    server = ServerProcess(tmp_path, env).start()
    api = json.dumps(server.url)
    try:
        async with (
            aiohttp.ClientSession() as http,
            page_server(HOSTILE % {"api": api}) as hostile_port,
            open_browser() as page,
        ):
            async with http.post(f"{server.url}/v1/sessions", json={"id": "victim"}) as r:
                assert r.status == 201
            await page.navigate(f"http://localhost:{hostile_port}/")
            await page.wait_for("window.done === true", timeout=60)
            results = await page.evaluate("window.results")
            async with http.get(f"{server.url}/v1/sessions") as r:
                ids = [s["id"] for s in (await r.json())["sessions"]]
            async with http.get(f"{server.url}/v1/sessions/victim/events") as r:
                victim = (await r.json())["events"]
            assert ids == ["victim"], (ids, results)  # nothing created, no run started
            assert [e["type"] for e in victim] == ["session_created"]
            assert results["cors-json"].startswith("blocked")  # the preflight was refused
            assert results["read"].startswith("blocked")
            assert results["eventsource"] == "blocked"
            assert not (tmp_path / "pwned").exists()

            # The allowed origin: served on the port AGENTLOG_ALLOWED_ORIGINS names.
            app = web.Application()

            async def friendly(request: web.Request) -> web.Response:
                return web.Response(text=FRIENDLY % {"api": api}, content_type="text/html")

            app.router.add_get("/", friendly)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", friendly_port).start()
            try:
                await page.navigate(f"{friendly_origin}/")
                await page.wait_for("window.done === true", timeout=90)
                assert await page.evaluate("window.failure || null") is None
                assert await page.evaluate("window.created") == 201
                assert await page.evaluate("window.streamHeader") == "v1"
                chunks = await page.evaluate("window.chunks")
                assert chunks[0] == "start" and chunks[-1] == "[DONE]", chunks
                assert "text-delta" in chunks and "finish" in chunks
                events = await page.evaluate("window.events")
                assert "run_finished" in events
            finally:
                await runner.cleanup()
    finally:
        server.stop()
