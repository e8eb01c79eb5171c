"""How long a turn takes to finish after kill -9 of the server running it (or, with --sigterm,
its graceful shutdown), with no user action: the crash drill (a tool with a side effect done,
a slow tool in flight) on SQLite (the server is started again on its file) and on PostgreSQL
(a second server continues the turn).

    .venv/bin/python bench/crash_continue.py [--rounds N] [--lease SECONDS] [--postgres URL]
        [--sigterm]

Times, per round, from the kill (or SIGTERM) to the continuation's `run_started` (the crash
noticed) and to its `run_finished` (the turn finished). Without --postgres a private
PostgreSQL cluster is started (initdb), and removed at the end. Prints a table. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from tests.e2e.test_runs_http import all_events, create_session, start_run, wait_until
from tests.faults.servers import PrivatePostgres, postgres_available
from tests.support.crash_drill import DRILL_PROMPT, drill_env, slow_tool_in_flight, turn_finished
from tests.support.server import ServerProcess


async def one_round(
    database: str, lease: float | None, sigterm: bool = False
) -> tuple[float, float]:
    """(kill -> continuation started, kill -> turn finished), in seconds; with `sigterm`,
    from the SIGTERM (the server's own exit included)."""
    workdir = Path(tempfile.mkdtemp(prefix="agentlog-bench-crash-"))
    env = drill_env(lease or 8.0, workdir / "workspaces")
    if lease is None:
        del env["AGENTLOG_RUN_LOCK_TTL_SECONDS"]  # the default
    env["AGENTLOG_DATABASE_URL"] = database
    env["TMPDIR"] = str(workdir)
    sqlite = database.startswith("sqlite")
    servers = [ServerProcess(workdir, env).start()]
    if not sqlite:
        servers.append(ServerProcess(workdir, env).start())
    try:
        async with aiohttp.ClientSession() as http:
            first = servers[0]
            sid = await create_session(http, first.url)
            run_id = await start_run(http, first.url, sid, DRILL_PROMPT)
            await slow_tool_in_flight(http, first.url, sid)
            killed = time.monotonic()
            if sigterm:
                await asyncio.to_thread(first.terminate, 60)
            else:
                first.kill()
            leftovers = agent_process_ids(run_id)
            if sqlite:
                servers.append(ServerProcess(workdir, env).start())
            survivor = servers[-1]

            async def continued() -> bool:
                events = await all_events(http, survivor.url, sid)
                return any(e.get("resumed_after_crash") for e in events)

            await wait_until(continued, 120, interval=0.05, what="the continuation")
            noticed = time.monotonic() - killed
            finished, _ = await turn_finished(http, survivor.url, sid, timeout=120)
            for pid in leftovers:  # the orphan watch ends them; in case it did not
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return noticed, finished - killed
    finally:
        for each in servers:
            each.kill()


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    if url is not None or not postgres_available():
        yield url
        return
    server = PrivatePostgres()
    try:
        yield server.start().url
    finally:
        server.kill()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--lease", type=float, default=None, help="AGENTLOG_RUN_LOCK_TTL_SECONDS (default: 8)"
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: a private cluster)")
    parser.add_argument("--sigterm", action="store_true", help="SIGTERM instead of kill -9")
    args = parser.parse_args()
    lease = f"{args.lease:g} s" if args.lease else "8 s (default)"
    stop = "SIGTERM" if args.sigterm else "kill"
    print(f"lease {lease}, {args.rounds} rounds each")
    print(
        f"| database | {stop} -> continuation started, s (median, min-max) "
        f"| {stop} -> turn finished |"
    )
    print("|---|---|---|")
    with postgres(args.postgres) as pg:
        sqlite_file = Path(tempfile.mkdtemp(prefix="agentlog-bench-crash-db-")) / "log.db"
        cases = [("SQLite, the server restarted", f"sqlite:///{sqlite_file}")]
        if pg is not None:
            cases.append(("PostgreSQL, a second server", pg))
        for name, url in cases:
            times = [await one_round(url, args.lease, args.sigterm) for _ in range(args.rounds)]
            noticed = [t[0] for t in times]
            finished = [t[1] for t in times]
            print(f"| {name} | {_figures(noticed)} | {_figures(finished)} |")


def _figures(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    asyncio.run(main())
