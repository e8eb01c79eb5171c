"""`agentlog serve --workers N` (transport/cli/workers.py): on PostgreSQL, two processes serve
one port, requests land on both, appends through both are dense, each background loop runs in
one of them, and SIGTERM stops them all. On SQLite more than one worker is refused."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from agentlog.infra.store.opening import parse_database_url
from agentlog.transport.app import WORKER_HEADER
from agentlog.transport.cli.open_files import OTHER_FILES
from tests.support.server import AGENTLOG, ServerProcess

APPENDS = 120


def pid_of(worker: str) -> int:
    return int(worker.split()[1])  # "<index>/<count> <pid>"


async def append_through_new_connections(url: str) -> tuple[list[int], set[str]]:
    """APPENDS appends, 16 at a time, each on a connection of its own (so the kernel spreads
    them over the workers); their seqs and the workers that answered."""
    seqs: list[int] = []
    workers: set[str] = set()
    gate = asyncio.Semaphore(16)

    async def append(n: int) -> None:
        body = {"events": [{"type": "custom", "name": "n", "data": {"n": n}}]}
        async with (
            gate,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
            http.post(f"{url}/v1/sessions/shared/events", json=body) as response,
        ):
            assert response.status == 200, await response.text()
            seqs.extend((await response.json())["seqs"])
            workers.add(response.headers[WORKER_HEADER])

    await asyncio.gather(*(append(n) for n in range(APPENDS)))
    return seqs, workers


async def both_workers_listening(url: str, count: int = 2) -> None:
    """The supervisor's port answers once the first worker listens; wait (bounded) until every
    worker answers, each request on a connection of its own."""
    seen: set[str] = set()
    async with asyncio.timeout(60):
        while len(seen) < count:
            connector = aiohttp.TCPConnector(force_close=True)
            async with (
                aiohttp.ClientSession(connector=connector) as http,
                http.get(f"{url}/healthz") as response,
            ):
                seen.add(response.headers[WORKER_HEADER].split()[0])
            await asyncio.sleep(0.05)


async def loop_holders(postgres_url: str) -> dict[str, str]:
    """Each background loop's lease and its holder ("host:pid"), as the database has them."""
    url = parse_database_url(postgres_url)
    conn = await asyncpg.connect(url.dsn)  # type: ignore[attr-defined]
    try:
        rows = await conn.fetch(
            f'SELECT session_id, run_id FROM "{url.schema}".agentlog_run_leases '  # type: ignore[attr-defined]
            "WHERE session_id LIKE '~loop:%' AND expires_at > clock_timestamp()"
        )
    finally:
        await conn.close()
    return {row[0]: row[1] for row in rows}


async def test_two_workers_serve_one_port_with_one_of_each_loop_and_stop_on_sigterm(
    tmp_path: Path, postgres_url: str
) -> None:
    server = ServerProcess(
        tmp_path, {"AGENTLOG_DATABASE_URL": postgres_url, "AGENTLOG_WORKERS": "2"}
    )
    server.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{server.url}/v1/sessions", json={"id": "shared"}) as created,
        ):
            assert created.status == 201
        await both_workers_listening(server.url)
        seqs, workers = await append_through_new_connections(server.url)
        assert sorted(seqs) == list(range(2, APPENDS + 2))  # dense: every seq once, no gap
        assert len(workers) == 2 and {w.split()[0] for w in workers} == {"0/2", "1/2"}
        pids = {pid_of(w) for w in workers}

        async with asyncio.timeout(30):  # each loop's lease is taken within a quarter TTL
            while len(holders := await loop_holders(postgres_url)) < 4:
                await asyncio.sleep(0.2)
        loops = {name.split(":")[1] for name in holders}
        assert {"projector", "abandoned-run-sweeper", "idempotency-key-pruner"} <= loops
        assert {int(holder.rsplit(":", 1)[1]) for holder in holders.values()} <= pids
        # One projector for both: its lease is one row, held by one of the two.
        assert sum(1 for name in holders if name == "~loop:projector") == 1
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}/v1/sessions/shared/messages") as response,
        ):
            assert len((await response.json())["messages"]) == APPENDS

        assert server.terminate(timeout=60) == 0
        for pid in pids:  # the supervisor waited for both: neither is left
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            raise AssertionError(f"worker {pid} still runs after SIGTERM")
    finally:
        server.stop()


def test_more_than_one_worker_on_sqlite_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    done = subprocess.run(
        [str(AGENTLOG), "serve", "--port", "0", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "--workers 2 needs a database several processes share (PostgreSQL)" in done.stderr
    assert "--workers 1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def soft_open_files(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files line")


def test_serve_raises_its_open_files_limit_to_fit_its_streams(tmp_path: Path) -> None:
    # Many systems start a process with a soft limit of 1,024 open files: fewer than the
    # streams one worker may hold, so the server would stop accepting connections at ~1,000.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048 + OTHER_FILES:
        pytest.skip(f"the hard open-files limit ({hard}) is below what the test asks for")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # the child inherits it
    try:
        server = ServerProcess(
            tmp_path,
            {
                "AGENTLOG_DATABASE_URL": f"sqlite:///{tmp_path}/files.db",
                "AGENTLOG_MAX_SSE_CONNECTIONS": "2048",
            },
        ).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert server.proc is not None
        assert soft_open_files(server.proc.pid) == 2048 + OTHER_FILES
    finally:
        server.stop()
