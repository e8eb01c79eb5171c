"""`agentlog serve` runs on the event loop AGENTLOG_EVENT_LOOP names, says which at start, and
refuses one it does not know or cannot import."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.server import AGENTLOG, ServerProcess, free_port
from tests.support.sse_client import SseParser

pytestmark = pytest.mark.slow


def loaded_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_serve_runs_on_the_loop_it_is_given_says_so_and_serves_an_append_and_a_replay(
    tmp_path: Path, sqlite_url: str, loop: str
) -> None:
    pytest.importorskip("uvloop")
    server = ServerProcess(
        tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_EVENT_LOOP": loop}
    ).start()
    try:
        assert server.proc is not None
        first_line = server.log.read_text().splitlines()[0]
        assert f"event loop {loop})" in first_line, first_line
        # uvloop's extension is in the process exactly when it was asked for.
        assert ("uvloop/loop" in loaded_libraries(server.proc.pid)) == (loop == "uvloop")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/v1/sessions", json={"id": "l"}) as response:
                assert response.status == 201
            for i in range(3):
                body = {"events": [{"type": "custom", "name": "n", "data": i}]}
                async with http.post(f"{server.url}/v1/sessions/l/events", json=body) as response:
                    assert response.status == 200, await response.text()
            parser = SseParser()
            seen: list[tuple[int, str]] = []
            headers = {"Accept": "text/event-stream"}
            url = f"{server.url}/v1/sessions/l/events"
            async with asyncio.timeout(30), http.get(url, headers=headers) as response:
                assert response.status == 200
                async for chunk in response.content.iter_any():
                    seen += [(int(e.id), e.event) for e in parser.feed(chunk.decode()) if e.id]
                    if len(seen) >= 4:
                        break
        assert seen == [(1, "session_created"), (2, "custom"), (3, "custom"), (4, "custom")]
        # SIGTERM is handled on this loop too: a graceful exit.
        assert await asyncio.to_thread(server.terminate) == 0
    finally:
        server.stop()


def serve(tmp_path: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, "serve", "--port", str(free_port())],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_an_event_loop_it_does_not_know(tmp_path: Path, sqlite_url: str) -> None:
    done = serve(
        tmp_path,
        {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_EVENT_LOOP": "libuv"},
        str(AGENTLOG),
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "agentlog: configuration error: AGENTLOG_EVENT_LOOP='libuv' must be one of auto, "
        "uvloop, asyncio"
    )


# `agentlog` in a Python where `import uvloop` fails, as on Windows.
WITHOUT_UVLOOP = (
    "import sys; sys.modules['uvloop'] = None; "
    "from agentlog.transport.cli.main import main; sys.exit(main())"
)


def test_serve_refuses_uvloop_where_it_cannot_be_imported(tmp_path: Path, sqlite_url: str) -> None:
    done = serve(
        tmp_path,
        {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_EVENT_LOOP": "uvloop"},
        sys.executable,
        "-c",
        WITHOUT_UVLOOP,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        "agentlog: configuration error: AGENTLOG_EVENT_LOOP=uvloop, but uvloop cannot be imported"
    ), done.stderr
    assert "AGENTLOG_EVENT_LOOP=asyncio" in done.stderr
    assert done.stdout == ""  # it stopped before announcing anything
