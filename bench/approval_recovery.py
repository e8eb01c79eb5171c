"""How long an approval answer takes to reach the agent: on a live server (the turn had already
stopped to wait), and after kill -9 of the server that asked, answered on a restarted one.

    .venv/bin/python bench/approval_recovery.py [--sqlite] [--postgres URL] [--rounds N]

Times, per round, from the answer's POST to the tool's output in the log. Prints a table.
Asserts nothing. Default store: a fresh SQLite file per round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from tests.support.server import ServerProcess

PUBLISH = '[scenario:approval] publish "hello world"'


async def poll(check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.05)
    raise TimeoutError


async def one_round(database_url: str | None, *, crash: bool) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="agentlog-bench-approval-"))
    env = {"AGENTLOG_AGENT": "scripted", "TMPDIR": str(workdir)}
    if database_url:
        env["AGENTLOG_DATABASE_URL"] = database_url
    # The crash round kills the asking server while its hook still waits in-process.
    env["AGENTLOG_APPROVAL_GRACE_SECONDS"] = "600" if crash else "0.2"
    server = ServerProcess(workdir, env).start()
    servers = [server]
    try:
        async with aiohttp.ClientSession() as http:
            sid = "bench-" + uuid.uuid4().hex
            await http.post(f"{server.url}/v1/sessions", json={"id": sid})
            await http.post(f"{server.url}/v1/sessions/{sid}/runs", json={"prompt": PUBLISH})

            async def pending() -> Any:
                async with http.get(f"{server.url}/v1/sessions/{sid}") as r:
                    body = await r.json()
                waiting = body.get("pending_approvals") or []
                if waiting and (crash or body["active_run"] is None):
                    return waiting[0]["approval_id"]
                return None

            approval_id = await poll(pending)
            if crash:
                server.kill()
                server = ServerProcess(workdir, env).start()
                servers.append(server)
            started = time.monotonic()
            url = f"{server.url}/v1/sessions/{sid}/approvals/{approval_id}"
            await http.post(url, json={"approved": True})

            async def ran() -> bool:
                async with http.get(f"{server.url}/v1/sessions/{sid}/events?limit=5000") as r:
                    events = (await r.json())["events"]
                return any(e["type"] == "tool_call_succeeded" for e in events)

            await poll(ran)
            return time.monotonic() - started
    finally:
        for each in servers:
            each.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| case | rounds | answer -> tool output, s (median) | min | max |")
    print("|---|---|---|---|---|")
    for crash in (False, True):
        times = [await one_round(args.postgres, crash=crash) for _ in range(args.rounds)]
        name = "kill -9 of the asking server, answered on a restart" if crash else "live server"
        print(
            f"| {name} | {len(times)} | {statistics.median(times):.2f} | "
            f"{min(times):.2f} | {max(times):.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
