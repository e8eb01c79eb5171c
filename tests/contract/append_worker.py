"""A separate OS process that appends to a store, for the multi-process contract tests.

Usage: python -m tests.contract.append_worker DATABASE_URL WRITER COUNT SESSION [SESSION ...]
Each event is custom(name="w", data=[writer, i]) so the test can check every one landed once.
Appends alternate between the sessions and use batches of 1-3 events; several run concurrently
inside the process so group commit and cross-process locking are both exercised.
"""

from __future__ import annotations

import asyncio
import random
import sys

from agentlog.domain.events import CustomEventRecorded
from agentlog.infra.store.opening import open_store


async def main(url: str, writer: int, count: int, sessions: list[str]) -> None:
    rng = random.Random(writer)
    async with open_store(url) as store:
        queue = list(range(count))

        async def lane() -> None:
            while queue:
                size = min(len(queue), rng.randint(1, 3))
                items = queue[:size]
                del queue[:size]
                session = rng.choice(sessions)
                await store.append(
                    session,
                    [CustomEventRecorded(name="w", data=[writer, i]) for i in items],
                )

        await asyncio.gather(*(lane() for _ in range(4)))


if __name__ == "__main__":
    url, writer, count, *sessions = sys.argv[1:]
    asyncio.run(main(url, int(writer), int(count), sessions))
