"""A regenerate's start against the session's length, beside a plain start's.

    .venv/bin/python bench/regenerate_start.py [--sizes 1000,10000,100000] [--repeat 3]
        [--postgres URL]

For each size, one session is filled straight through the store with earlier runs (as
bench/run_start.py fills them); then, against `agentlog serve` on PostgreSQL (no Redis),
each repetition times the 202 of a plain start (`{"prompt"}`, a one-line answer) and of
useChat's regenerate of the last answer (`{"trigger": "regenerate-message"}`: the start reads
the session's stored UI messages to find the turn and appends `conversation_rewound` with the
run), each waited for to its end; and useChat's plain send (`{"messages"}` whose last user
message has the chat's own id: the start reads the stored UI messages once, to refuse an id
another message has). Prints the medians. Asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp
from run_start import bench_arguments, served_sessions

PROMPT = "Why is the sky blue?"


async def timed_start(
    http: aiohttp.ClientSession, base: str, session_id: str, body: dict[str, Any]
) -> float:
    started = time.perf_counter()
    async with http.post(f"{base}/v1/sessions/{session_id}/runs", json=body) as r:
        answer = await r.json()
        assert r.status == 202, answer
    accepted = time.perf_counter() - started
    while True:  # to its end, and its lease released: the next start is never refused
        async with http.get(f"{base}/v1/sessions/{session_id}") as r:
            session = await r.json()
        if session["status"] != "running" and session.get("active_run") is None:
            return accepted
        await asyncio.sleep(0.05)


async def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0], repeat=3)
    async with served_sessions(args.postgres, args.sizes) as server:
        print(
            f"{'events':>8} | {'plain start (202) ms':>20} | "
            f"{'useChat send (202) ms':>21} | {'regenerate (202) ms':>19}"
        )
        async with aiohttp.ClientSession() as http:
            for size in args.sizes:
                plain, send, regenerate = [], [], []
                for _ in range(args.repeat):
                    body: dict[str, Any] = {"prompt": PROMPT}
                    plain.append(await timed_start(http, server.url, f"s{size}", body))
                    text = [{"type": "text", "text": PROMPT}]
                    mine = {"id": uuid.uuid4().hex[:16], "role": "user", "parts": text}
                    body = {"trigger": "submit-message", "messages": [mine]}
                    send.append(await timed_start(http, server.url, f"s{size}", body))
                    body = {"trigger": "regenerate-message"}
                    regenerate.append(await timed_start(http, server.url, f"s{size}", body))
                print(
                    f"{size:>8} | {statistics.median(plain) * 1000:>20.1f} | "
                    f"{statistics.median(send) * 1000:>21.1f} | "
                    f"{statistics.median(regenerate) * 1000:>19.1f}"
                )


if __name__ == "__main__":
    asyncio.run(main())
