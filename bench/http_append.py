"""The HTTP append path side by side: a bare aiohttp handler (no storage), and `agentlog serve`
on SQLite and on PostgreSQL with one and with two workers, each driven by the same load.

    .venv/bin/python bench/http_append.py [--seconds 10] [--connections 64] [--rounds 1]
        [--postgres URL] [--targets bare,sqlite,postgres,postgres-2] [--waits]
        [--loop auto|uvloop|asyncio]

Each target is a fresh server process on a free port (a new SQLite file, a new PostgreSQL
schema) with 64 sessions created first. The load is `wrk` (apt `wrk`) when installed, else an
aiohttp client of the same shape: `--connections` keep-alive connections, each POSTing one
~220-byte custom event per request to the 64 sessions in turn, 2 s of warm-up then
`--seconds` measured. Prints requests/s, p50 and p99 latency, and the server's CPU time per
request (user + system of the server and its workers, from /proc), and each target's
throughput as a fraction of the bare handler's in the same round. With `--rounds N` the
targets are measured N times in turn (on a shared machine the load changes within a minute:
compare rows of one round, and report ranges). For each PostgreSQL target it also prints
PostgreSQL's side (bench/database_side.py): the append transactions and events in each, the CPU
of the server's own backends per request, and with `--waits` where those backends waited and,
when on a lock, what its holder was doing. `--loop` sets AGENTLOG_EVENT_LOOP for the agentlog
servers; the bare handler always runs on asyncio's loop, so it stays the same peer. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp
import asyncpg

from bench.database_side import DatabaseFigures, DatabaseSide

SESSIONS = 64
BODY = (
    '{"events": [{"type": "custom", "name": "bench", "data": {"text": "'
    + "x" * 150
    + '", "n": 1}}]}'
)
AGENTLOG = Path(sys.executable).with_name("agentlog")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# A handler that does what agentlog's does minus the storage: read the body, parse it, answer.
BARE_SERVER = textwrap.dedent(
    """
    import json, sys
    from aiohttp import web

    async def append(request):
        body = json.loads(await request.read())
        return web.json_response({"seqs": [len(body["events"])], "head": 1})

    async def create(request):
        return web.json_response({"id": "s"}, status=201)

    app = web.Application()
    app.router.add_post("/v1/sessions/{session_id}/events", append)
    app.router.add_post("/v1/sessions", create)
    app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)

WRK_SCRIPT = textwrap.dedent(
    f"""
    wrk.method = "POST"
    wrk.body = '{BODY}'
    wrk.headers["Content-Type"] = "application/json"
    local n = 0
    request = function()
      n = n + 1
      return wrk.format(nil, "/v1/sessions/s" .. (n % {SESSIONS}) .. "/events")
    end
    """
)


@dataclass
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_pids(pid: int) -> list[int]:
    """`pid` and its children still running (the workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *map(int, children)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and of its children still running (the workers)."""
    total = 0.0
    for one in server_pids(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


def start_server(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{command} never became healthy")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def wrk_load(url: str, seconds: float, connections: int, script: Path) -> Figures:
    threads = str(min(connections, os.cpu_count() or 1))
    out = subprocess.run(
        [
            "wrk",
            "-t",
            threads,
            "-c",
            str(connections),
            "-d",
            f"{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found is None:
            return float("nan")
        value, unit = float(found[1]), found[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    assert total is not None, out
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Figures(
        requests=int(total[1]),
        seconds=float(total[2]) * (60 if total[3] == "m" else 1),
        p50_ms=latency("50%"),
        p99_ms=latency("99%"),
        errors=int(errors[1]) if errors else 0,
    )


async def client_load(url: str, seconds: float, connections: int) -> Figures:
    """What wrk does, from an aiohttp client (for machines without wrk)."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one_connection(n: int) -> None:
        nonlocal errors
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            i = n
            while time.perf_counter() < stop_at:
                i += 1
                began = time.perf_counter()
                async with http.post(
                    f"{url}/v1/sessions/s{i % SESSIONS}/events",
                    data=BODY,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    await response.read()
                    if response.status >= 300:
                        errors += 1
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(one_connection(n) for n in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return Figures(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        errors=errors,
    )


def load(url: str, seconds: float, connections: int, script: Path | None) -> Figures:
    if script is not None:
        return wrk_load(url, seconds, connections, script)
    return asyncio.run(client_load(url, seconds, connections))


def create_sessions(url: str) -> None:
    for n in range(SESSIONS):
        request = urllib.request.Request(
            url + "/v1/sessions",
            data=f'{{"id": "s{n}"}}'.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass


def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    args: argparse.Namespace,
    script: Path | None,
    schema: str | None = None,
) -> tuple[str, Figures, float]:
    url = f"http://127.0.0.1:{port}"
    proc = start_server(command, env, url)
    try:
        create_sessions(url)
        load(url, 2, args.connections, script)  # warm-up: pools filled, code paths hot
        observer = None
        if schema is not None:
            observer = DatabaseSide(args.postgres, schema, server_pids(proc.pid), args.waits)
            observer.start()
        cpu_before = cpu_seconds(proc.pid)
        figures = load(url, args.seconds, args.connections, script)
        cpu = cpu_seconds(proc.pid) - cpu_before
        if observer is not None:
            DATABASE_SIDE[name, len(DATABASE_SIDE)] = (observer.stop(), figures.requests)
    finally:
        stop_server(proc)
    return name, figures, cpu / max(1, figures.requests) * 1000


# What PostgreSQL did for each PostgreSQL target measured, in order.
DATABASE_SIDE: dict[tuple[str, int], tuple[DatabaseFigures, int]] = {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--targets", default="bare,sqlite,postgres,postgres-2")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        help="AGENTLOG_EVENT_LOOP for the agentlog servers (default: the server's default)",
    )
    parser.add_argument(
        "--waits",
        action="store_true",
        help="sample pg_stat_activity every 10 ms: where the server's backends waited",
    )
    args = parser.parse_args()
    targets = args.targets.split(",") * args.rounds
    load_before = os.getloadavg()[0]
    script: Path | None = None
    with tempfile.TemporaryDirectory() as tmp:
        if shutil.which("wrk"):
            script = Path(tmp) / "append.lua"
            script.write_text(WRK_SCRIPT)
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AGENTLOG_", "ANTHROPIC"))
        }
        base_env["AGENTLOG_LOG_LEVEL"] = "warning"
        agentlog_env = dict(base_env)
        if args.loop is not None:
            agentlog_env["AGENTLOG_EVENT_LOOP"] = args.loop
        results: list[tuple[str, Figures, float]] = []
        for target in targets:
            port = free_port()
            serve = [str(AGENTLOG), "serve", "--port", str(port)]
            if target == "bare":
                command = [sys.executable, "-c", BARE_SERVER, str(port)]
                results.append(
                    measure("bare aiohttp handler", command, base_env, port, args, script)
                )
            elif target == "sqlite":
                env = {
                    **agentlog_env,
                    "AGENTLOG_DATABASE_URL": f"sqlite:///{Path(tmp) / uuid.uuid4().hex}.db",
                    "AGENTLOG_WORKERS": "1",
                }
                results.append(measure("agentlog, SQLite", serve, env, port, args, script))
            elif target.startswith("postgres"):
                workers = target.partition("-")[2] or "1"
                schema = "bench_" + uuid.uuid4().hex[:10]
                env = {
                    **agentlog_env,
                    "AGENTLOG_DATABASE_URL": f"{args.postgres}?schema={schema}",
                    "AGENTLOG_WORKERS": workers,
                }
                try:
                    results.append(
                        measure(
                            f"agentlog, PostgreSQL, {workers} worker(s)",
                            serve,
                            env,
                            port,
                            args,
                            script,
                            schema,
                        )
                    )
                finally:
                    asyncio.run(drop_schema(args.postgres, schema))
    load_name = "wrk" if script is not None else "aiohttp client"
    print(
        f"{load_name}, {args.connections} connections, {args.seconds:g} s per target, "
        f"{os.cpu_count()} cores, load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, event loop {args.loop or 'the default'}"
    )
    print(
        "| round | target | req/s | of bare | p50 ms | p99 ms | server CPU per request ms "
        "| errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    per_round = len(results) // args.rounds
    for index, (name, figures, cpu_ms) in enumerate(results):
        same_round = results[index - index % per_round : index - index % per_round + per_round]
        bare = next((f.rate for n, f, _ in same_round if n.startswith("bare")), None)
        ratio = f"{figures.rate / bare:.2f}" if bare else ""
        print(
            f"| {index // per_round + 1} | {name} | {figures.rate:,.0f} | {ratio} | "
            f"{figures.p50_ms:.1f} | {figures.p99_ms:.1f} | {cpu_ms:.3f} | {figures.errors} |"
        )
    if DATABASE_SIDE:
        print("\nPostgreSQL's side, in the order measured:")
        for (name, _), (database, requests) in DATABASE_SIDE.items():
            print(f"- {name}: {database.summary(requests)}")


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
