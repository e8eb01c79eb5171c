"""How long a resume holds the event loop: the SDK writing a stored transcript into the CLI's
config directory, on the loop (what `ClaudeSDKClient.connect()` does) against agentlog's
`resumed_off_loop` (the same SDK function in a worker thread).

A ticker wakes every millisecond and records the longest gap between its wake-ups while each
variant materializes a transcript of N lines (~600 bytes each, as the CLI writes), alternately,
`--rounds` times. Nothing here starts a CLI or a database: the transcript is in memory, as the
runner primes it.

    .venv/bin/python bench/resume_stall.py --lines 2000 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions
from claude_agent_sdk._internal.session_resume import materialize_resume_session
from claude_agent_sdk.types import SessionKey, SessionStore, SessionStoreEntry

from agentlog.infra.agent.sdk.resume_off_loop import resumed_off_loop


class InMemory(SessionStore):
    def __init__(self, lines: list[SessionStoreEntry]) -> None:
        self.lines = lines

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        pass

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        return self.lines

    async def list_subkeys(self, key: Any) -> list[str]:
        return []


def transcript(lines: int) -> list[SessionStoreEntry]:
    session = str(uuid.uuid4())
    return [
        {  # type: ignore[typeddict-item]
            "type": "assistant" if i % 2 else "user",
            "uuid": str(uuid.uuid4()),
            "parentUuid": None,
            "sessionId": session,
            "cwd": "/workspace",
            "timestamp": "2026-12-06T12:00:00.000Z",
            "message": {"role": "user", "content": [{"type": "text", "text": "x" * 400}]},
        }
        for i in range(lines)
    ]


async def longest_gap(work: Callable[[], Awaitable[None]]) -> float:
    """The longest the loop went without running the ticker while `work` ran, in ms."""
    gaps = [0.0]
    running = True

    async def tick() -> None:
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.ensure_future(tick())
    await asyncio.sleep(0.01)
    await work()
    running = False
    await ticker
    return max(gaps) * 1000


async def on_loop(options: ClaudeAgentOptions) -> None:
    """What `ClaudeSDKClient.connect()` does with a store-backed resume."""
    done = await materialize_resume_session(options)
    assert done is not None
    await done.cleanup()


async def off_loop(options: ClaudeAgentOptions, config: str) -> None:
    """What the runner does before it connects."""
    async with resumed_off_loop(options) as resumed:
        assert resumed.env["CLAUDE_CONFIG_DIR"] != config


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = tempfile.mkdtemp(prefix="resume-stall-")
    print(f"# 2 cores, load average {os.getloadavg()[0]:.1f} at start")
    on_head, off_head = "on the loop: longest gap ms", "off the loop: longest gap ms"
    print(f"{'lines':>7} | {on_head:>28} | {off_head:>29}")
    for lines in args.lines:
        store = InMemory(transcript(lines))
        on: list[float] = []
        off: list[float] = []
        for _ in range(args.rounds):
            options = ClaudeAgentOptions(
                resume=str(uuid.uuid4()),
                session_store=store,
                cwd="/workspace",
                env={"CLAUDE_CONFIG_DIR": config},
            )

            on.append(await longest_gap(functools.partial(on_loop, options)))
            off.append(await longest_gap(functools.partial(off_loop, options, config)))
        print(
            f"{lines:>7} | {statistics.median(on):>28.1f} | {statistics.median(off):>29.1f}"
            f"   (medians of {args.rounds}; ranges {min(on):.1f}-{max(on):.1f}"
            f" and {min(off):.1f}-{max(off):.1f})"
        )
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    asyncio.run(main())
