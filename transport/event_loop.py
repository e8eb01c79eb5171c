"""The event loop `agentlog serve` runs on (AGENTLOG_EVENT_LOOP): uvloop or asyncio's own.

`auto` (the default) takes uvloop where it is installed (a dependency on Linux and macOS; it
has no Windows build) and asyncio's loop elsewhere: on the HTTP append path uvloop runs the
same requests in 11-15% fewer instructions (docs/benchmarks.md, "The event loop"). Only `serve`
and its workers use this: the other commands are short and run on asyncio's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

EVENT_LOOPS = ("auto", "uvloop", "asyncio")


class EventLoopUnavailable(Exception):
    """AGENTLOG_EVENT_LOOP names a loop this Python cannot import."""


@dataclass(frozen=True)
class EventLoop:
    name: str  # "uvloop" or "asyncio": what the start line says
    # None: asyncio.run's own loop, set as the thread's current loop as asyncio.run does.
    new_loop: Callable[[], asyncio.AbstractEventLoop] | None


ASYNCIO = EventLoop("asyncio", None)


def choose_event_loop(choice: str) -> EventLoop:
    """The loop `choice` (one of EVENT_LOOPS) stands for here."""
    if choice == "asyncio":
        return ASYNCIO
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise EventLoopUnavailable(
                f"AGENTLOG_EVENT_LOOP=uvloop, but uvloop cannot be imported ({exc}): install "
                "it (pip install uvloop; there is no Windows build) or set "
                "AGENTLOG_EVENT_LOOP=asyncio"
            ) from None
        return ASYNCIO
    return EventLoop("uvloop", uvloop.new_event_loop)
