"""`agentlog rebuild [--session ID]`: replay the projections from the log, with a progress bar.

Safe while servers run: the rebuild is built beside the live rows and swapped in (see
agentlog.infra.store.projector), and the servers' projectors continue from the position it reached.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from agentlog.infra.store.opening import open_projection_store, open_store
from agentlog.infra.store.projector import Projector
from agentlog.transport.settings import Settings

_BAR_WIDTH = 30


def add_rebuild_command(subparsers: Any) -> None:
    """Register `rebuild` on the `agentlog` command's subparsers."""
    rebuild = subparsers.add_parser(
        "rebuild", help="rebuild the projections (UI messages, sessions) from the log"
    )
    rebuild.add_argument(
        "--session", dest="session_id", metavar="ID", help="rebuild only this session"
    )


class ProgressBar:
    """One line on a terminal, redrawn with \\r: done/total events, events/s and ETA."""

    def __init__(self, stream: TextIO, *, min_interval: float = 0.1) -> None:
        self.stream = stream
        self.min_interval = min_interval
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._drawn_at < self.min_interval:
            return
        self._drawn_at = now
        self._drawn = True
        self.stream.write("\r" + self.line(done, total, now - self.started))
        self.stream.flush()

    @staticmethod
    def line(done: int, total: int, elapsed: float) -> str:
        total = max(total, done, 1)
        filled = int(_BAR_WIDTH * done / total)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        return (
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done:,}/{total:,} events "
            f"{rate:,.0f} events/s ETA {_duration(eta)}"
        )

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


async def run_rebuild(
    settings: Settings,
    session_id: str | None,
    *,
    progress_stream: TextIO | None = None,
    summary_stream: TextIO | None = None,
) -> int:
    """Rebuild and print a summary line; UnknownSession propagates (the CLI reports it)."""
    progress_stream = progress_stream or sys.stderr
    summary_stream = summary_stream or sys.stdout
    async with (
        open_store(
            settings.database_url,
            redis_url=settings.redis_url,
            max_event_bytes=settings.max_event_bytes,
        ) as store,
        open_projection_store(store) as projection_store,
    ):
        bar = ProgressBar(progress_stream)
        try:
            result = await Projector(store, projection_store).rebuild(session_id, bar.update)
        finally:
            bar.finish()
    what = f"session {session_id!r}" if session_id is not None else f"{result.sessions:,} sessions"
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    note = " (a rebuild started later went live first)" if result.superseded else ""
    print(
        f"agentlog: rebuilt {what} from {result.events:,} events in {result.seconds:.2f} s "
        f"({rate:,.0f} events/s), up to position {result.position:,}{note}",
        file=summary_stream,
    )
    return 0
