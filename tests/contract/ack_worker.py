"""Appends until killed, printing `seq token` for every acknowledged event, for the kill -9 test.

Usage: python -m tests.contract.ack_worker DATABASE_URL SESSION
"""

from __future__ import annotations

import asyncio
import sys

from agentlog.domain.events import CustomEventRecorded
from agentlog.infra.store.opening import open_store


async def main(url: str, session: str) -> None:
    async with open_store(url) as store:
        counter = 0

        async def lane(lane_id: int) -> None:
            nonlocal counter
            while True:
                counter += 1
                token = f"{lane_id}-{counter}"
                (seq,) = await store.append(session, [CustomEventRecorded(name="ack", data=token)])
                sys.stdout.write(f"{seq} {token}\n")
                sys.stdout.flush()

        await asyncio.gather(*(lane(i) for i in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
