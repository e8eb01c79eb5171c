"""What every fault scenario counts, over real HTTP: appends attempted / acknowledged / in the
log, duplicates, the seqs each SSE follower received, and the time to recovery."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import aiohttp

from tests.support.sse_client import SseParser


@dataclass
class Attempt:
    n: int
    started: float
    ended: float
    status: int
    code: str | None = None
    seqs: list[int] | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Writer:
    """Appends one custom event at a time to a session through one instance, as fast as the
    instance answers, each event naming (writer, n) so the log can be checked against it."""

    http: aiohttp.ClientSession
    base: str
    session: str
    name: str
    pause: float = 0.01
    attempts: list[Attempt] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            body = {"events": [{"type": "custom", "name": self.name, "data": {"n": n}}]}
            started = time.monotonic()
            try:
                async with self.http.post(
                    f"{self.base}/v1/sessions/{self.session}/events", json=body
                ) as response:
                    payload = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, ValueError) as exc:
                self.attempts.append(Attempt(n, started, time.monotonic(), 0, repr(exc)))
                await asyncio.sleep(0.1)
                continue
            attempt = Attempt(n, started, time.monotonic(), status)
            if status == 200:
                attempt.seqs = payload["seqs"]
            else:
                attempt.code = payload["error"]["code"]
            self.attempts.append(attempt)
            await asyncio.sleep(self.pause)

    def stop(self) -> None:
        self._stop.set()

    @property
    def acknowledged(self) -> dict[int, int]:
        """n -> the seq its acknowledgement named."""
        return {a.n: a.seqs[0] for a in self.attempts if a.seqs}

    def failed(self, *codes: str) -> list[Attempt]:
        return [a for a in self.attempts if a.seqs is None and (not codes or a.code in codes)]

    def recovered_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first acknowledgement after it."""
        for attempt in self.attempts:
            if attempt.seqs and attempt.ended > moment:
                return attempt.ended - moment
        return None


@dataclass
class Follower:
    """Follows a session over SSE through one instance, reconnecting with Last-Event-ID
    whenever the stream ends or fails, as a browser's EventSource does."""

    http: aiohttp.ClientSession
    base: str
    session: str
    received: list[int] = field(default_factory=list)
    reconnects: int = 0

    async def run(self) -> None:
        parser = SseParser()
        while True:
            headers = {"Accept": "text/event-stream"}
            if parser.last_event_id:
                headers["Last-Event-ID"] = parser.last_event_id
            try:
                async with self.http.get(
                    f"{self.base}/v1/sessions/{self.session}/events", headers=headers
                ) as response:
                    if response.status == 200:
                        parser = SseParser(last_event_id=parser.last_event_id)
                        async for chunk in response.content.iter_any():
                            self.received.extend(
                                int(e.id)  # type: ignore[arg-type]
                                for e in parser.feed(chunk.decode())
                                if e.id
                            )
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.2)

    async def wait_for(self, head: int, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.received) < head:
                    await asyncio.sleep(0.05)


@dataclass
class Probe:
    """Polls GET /healthz: (time, status, failing components)."""

    http: aiohttp.ClientSession
    base: str
    answers: list[tuple[float, int, list[str]]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                async with self.http.get(f"{self.base}/healthz") as response:
                    body = await response.json(content_type=None)
                    self.answers.append(
                        (time.monotonic(), response.status, body.get("failing", []))
                    )
            except (aiohttp.ClientError, ValueError):
                self.answers.append((time.monotonic(), 0, ["no answer"]))
            await asyncio.sleep(0.2)


async def read_log(http: aiohttp.ClientSession, base: str, session: str) -> list[dict]:  # type: ignore[type-arg]
    """The session's whole log, page by page, through the JSON events API."""
    events: list[dict] = []  # type: ignore[type-arg]
    after = 0
    while True:
        async with http.get(
            f"{base}/v1/sessions/{session}/events", params={"offset": after, "limit": 5000}
        ) as response:
            assert response.status == 200, await response.text()
            page = (await response.json())["events"]
        events += page
        if len(page) < 5000:
            return events
        after = page[-1]["seq"]


def check_log(log: list[dict], writers: list[Writer]) -> None:  # type: ignore[type-arg]
    """The invariants: seqs dense from 1; no event twice; every acknowledged event in the log
    at the seq its acknowledgement named; no event whose append was refused as not written."""
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    written = [(e["name"], e["data"]["n"]) for e in log if e["type"] == "custom"]
    assert len(written) == len(set(written)), "an event was written twice"
    at = {(e["name"], e["data"]["n"]): e["seq"] for e in log if e["type"] == "custom"}
    for writer in writers:
        for n, seq in writer.acknowledged.items():
            assert at.get((writer.name, n)) == seq, f"acknowledged {writer.name}/{n} lost"
        for attempt in writer.failed("store_unavailable"):
            assert (writer.name, attempt.n) not in at, (
                f"{writer.name}/{attempt.n} was refused as not written, but is in the log"
            )
