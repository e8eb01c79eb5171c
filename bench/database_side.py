"""What PostgreSQL did for one server under load: its append transactions (and events in each),
the CPU its own backends used, and where they waited, sampled from `pg_stat_activity`.

Used by `bench/http_append.py` for its PostgreSQL targets. The server's backends are told from
other clients' (other servers on the same PostgreSQL all say `application_name=agentlog`) by
their client ports: those of the TCP connections the server's processes hold open to the
database, read from /proc, so PostgreSQL must run on the benchmark's machine for the CPU and
the waits (else they are left out). Transactions are counted from the rows themselves: every
row of one append transaction has the same `recorded_at`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class DatabaseFigures:
    transactions: int = 0
    events: int = 0
    cpu_seconds: float | None = None  # of the server's own backends, None when not readable
    samples: int = 0
    # Each sample's wait of each of the server's backends that was not idle ("CPU" when it
    # waited for nothing), and, for each one waiting on a lock, what the holder was doing.
    waits: Counter[str] = field(default_factory=Counter)
    holders: Counter[str] = field(default_factory=Counter)

    def summary(self, requests: int) -> str:
        per_tx = self.events / self.transactions if self.transactions else float("nan")
        cpu = (
            f"{self.cpu_seconds / max(1, requests) * 1e6:.0f} us"
            if self.cpu_seconds is not None
            else "n/a"
        )
        text = (
            f"{self.transactions:,} append transactions, {per_tx:.1f} events each; "
            f"CPU of its backends per request {cpu}"
        )
        if self.samples:
            busiest = ", ".join(f"{w} {n / self.samples:.2f}" for w, n in self.waits.most_common(5))
            text += f"\n  backends per sample ({self.samples} samples): {busiest}"
            if self.holders:
                total = sum(self.holders.values())
                held = ", ".join(f"{h} {n / total:.0%}" for h, n in self.holders.most_common(4))
                text += f"\n  a lock waiter's holder was in: {held}"
        return text


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def client_ports(pids: list[int], database_port: int) -> list[int]:
    """The local ports of the TCP connections `pids` hold to `database_port` on this machine."""
    inodes: set[str] = set()
    for pid in pids:
        inodes |= _socket_inodes(pid)
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == database_port:
                ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


def _backend_cpu(pids: list[int]) -> float | None:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


_WAITS = """
    SELECT coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU'),
           (SELECT coalesce(b.wait_event_type || ':' || b.wait_event, 'CPU')
            FROM pg_stat_activity AS b WHERE b.pid = any(pg_blocking_pids(a.pid)) LIMIT 1)
    FROM pg_stat_activity AS a
    WHERE a.pid = any($1::int[]) AND a.state <> 'idle'"""


class DatabaseSide:
    """Observe one server's side of PostgreSQL between start() and stop()."""

    def __init__(self, dsn: str, schema: str, server_pids: list[int], sample: bool) -> None:
        self.dsn = dsn
        self.schema = schema
        self.server_pids = server_pids
        self.sample = sample
        self.figures = DatabaseFigures()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backends: list[int] = []
        self._position = 0
        self._cpu: float | None = None

    def start(self) -> None:
        asyncio.run(self._start())
        if self.sample and self._backends:
            self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()))
            self._thread.start()

    def stop(self) -> DatabaseFigures:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        asyncio.run(self._finish())
        return self.figures

    async def _start(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            ports = client_ports(self.server_pids, urlparse(self.dsn).port or 5432)
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE client_port = any($1::int[])", ports
            )
            self._backends = [row[0] for row in rows]
            self._position = await conn.fetchval(
                f'SELECT position FROM "{self.schema}".agentlog_log_head'
            )
        finally:
            await conn.close()
        self._cpu = _backend_cpu(self._backends)

    async def _finish(self) -> None:
        cpu = _backend_cpu(self._backends)
        if cpu is not None and self._cpu is not None:
            self.figures.cpu_seconds = cpu - self._cpu
        conn = await asyncpg.connect(self.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT count(DISTINCT recorded_at), count(*) "
                f'FROM "{self.schema}".agentlog_events WHERE notification_id > $1',
                self._position,
            )
        finally:
            await conn.close()
        self.figures.transactions, self.figures.events = row[0], row[1]

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                for wait, holder in await conn.fetch(_WAITS, self._backends):
                    self.figures.waits[wait] += 1
                    if holder is not None:
                        self.figures.holders[holder] += 1
                self.figures.samples += 1
                await asyncio.sleep(0.01)
        finally:
            await conn.close()
