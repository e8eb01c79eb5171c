"""What one HTTP append costs the server, per thread: CPU time under wrk, or instructions.

    .venv/bin/python bench/request_cpu.py [--target sqlite|postgres] [--seconds 10]
    .venv/bin/python bench/request_cpu.py --callgrind [--target ...] [--requests 2000]
    (either with [--loop auto|uvloop|asyncio]: AGENTLOG_EVENT_LOOP for the server)

One `agentlog serve` (one worker) on a fresh SQLite file or PostgreSQL schema, 64 sessions, the
load of bench/http_append.py (64 connections, one ~220-byte custom event per POST).

- By default: wrk for 2 s of warm-up, then `--seconds` measured; prints requests/s, p99, and
  the CPU time per request of the event loop (the main thread) and of each other thread that
  used any, from /proc/<pid>/task/*/stat. On a shared machine this moves with the load.
- `--callgrind`: the server runs under `valgrind --tool=callgrind` with instrumentation off
  until the load starts; a closed loop of aiohttp clients (64 connections) posts `--requests`
  appends after 500 of warm-up; prints the instructions per request of each thread. Slow
  (about a minute) but nearly the same from run to run whatever else the machine runs, so
  two versions of the code can be compared on a busy machine (each thread's count moves by
  about 1% between runs of the same code).

To compare two checkouts, run each one's copy (its .venv's `agentlog` serves its code), in
turns. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from bench.http_append import (
    AGENTLOG,
    BODY,
    SESSIONS,
    WRK_SCRIPT,
    create_sessions,
    drop_schema,
    free_port,
    start_server,
    stop_server,
    wrk_load,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of `pid`."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


async def post_appends(url: str, total: int, connections: int = 64) -> int:
    """`total` appends from `connections` clients in a closed loop; how many got a 200."""
    left = total
    ok = 0

    async def one_connection(n: int) -> None:
        nonlocal left, ok
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            i = n
            while left > 0:
                left -= 1
                i += 1
                async with http.post(
                    f"{url}/v1/sessions/s{i % SESSIONS}/events",
                    data=BODY,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    await response.read()
                    ok += response.status == 200

    await asyncio.gather(*(one_connection(n) for n in range(connections)))
    return ok


def wait_healthy(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def cpu_per_thread(args: argparse.Namespace, env: dict[str, str], tmp: str) -> None:
    script = Path(tmp) / "append.lua"
    script.write_text(WRK_SCRIPT)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server([str(AGENTLOG), "serve", "--port", str(port)], env, url)
    try:
        create_sessions(url)
        wrk_load(url, 2, 64, script)
        load = os.getloadavg()[0]
        before = thread_cpu(proc.pid)
        figures = wrk_load(url, args.seconds, 64, script)
        after = thread_cpu(proc.pid)
    finally:
        stop_server(proc)
    requests = max(1, figures.requests)
    per = {t: (after[t] - before.get(t, 0.0)) / requests * 1e6 for t in after}
    loop = per.pop(proc.pid, 0.0)
    others = sorted((us for us in per.values() if us >= 0.5), reverse=True)
    print(
        f"{args.target}, event loop {args.loop or 'the default'}, "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}: "
        f"{figures.rate:,.0f} req/s, p99 {figures.p99_ms:.1f} ms, {figures.errors} errors; "
        f"CPU µs per request: all {loop + sum(per.values()):.1f}, event loop {loop:.1f}, "
        f"other threads {' '.join(f'{us:.1f}' for us in others)}"
    )


def instructions_per_thread(args: argparse.Namespace, env: dict[str, str], tmp: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = f"{tmp}/callgrind.out"
    proc = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}.%p",
            str(AGENTLOG),
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp,
    )
    try:
        wait_healthy(url, 600)
        create_sessions(url)
        asyncio.run(post_appends(url, 500))  # warm-up
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(proc.pid)], check=True, stdout=subprocess.DEVNULL)
        ok = asyncio.run(post_appends(url, args.requests))
        subprocess.run([*control, "off", str(proc.pid)], check=True, stdout=subprocess.DEVNULL)
    finally:
        stop_server(proc)
    threads = []
    for name in sorted(glob.glob(f"{out}.*")):
        text = Path(name).read_text(errors="replace")
        total = re.search(r"^totals:\s+(\d+)", text, re.MULTILINE)
        thread = re.search(r"^thread:\s+(\d+)", text, re.MULTILINE)
        if total is not None and thread is not None:
            threads.append((int(thread[1]), int(total[1]) / max(1, ok)))
    shown = ", ".join(f"thread {t}: {ir:,.0f}" for t, ir in threads if ir >= 1000)
    print(
        f"{args.target}, event loop {args.loop or 'the default'}: {ok} of {args.requests} "
        "appends answered 200; instructions per "
        f"request: all {sum(ir for _, ir in threads):,.0f} ({shown}; thread 1 is the loop)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        help="AGENTLOG_EVENT_LOOP for the server (default: the server's default)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTLOG_", "ANTHROPIC"))}
        env["AGENTLOG_LOG_LEVEL"] = "warning"
        env["AGENTLOG_WORKERS"] = "1"
        if args.loop is not None:
            env["AGENTLOG_EVENT_LOOP"] = args.loop
        schema = None
        if args.target == "sqlite":
            env["AGENTLOG_DATABASE_URL"] = f"sqlite:///{tmp}/{uuid.uuid4().hex}.db"
        else:
            schema = "bench_" + uuid.uuid4().hex[:10]
            env["AGENTLOG_DATABASE_URL"] = f"{args.postgres}?schema={schema}"
        try:
            if args.callgrind:
                instructions_per_thread(args, env, tmp)
            else:
                cpu_per_thread(args, env, tmp)
        finally:
            if schema is not None:
                asyncio.run(drop_schema(args.postgres, schema))


if __name__ == "__main__":
    main()
