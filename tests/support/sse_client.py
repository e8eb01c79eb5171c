"""A Server-Sent Events parser that behaves like a browser's EventSource: an event is dispatched
only at its blank line, so a connection cut mid-frame loses nothing it had not yet delivered,
and `last_event_id` is what EventSource would send as Last-Event-ID on reconnect."""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseParser:
    last_event_id: str | None = None
    retry_ms: int | None = None
    comments: list[str] = field(default_factory=list)
    _buffer: str = ""
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _id: str | None = None

    def feed(self, chunk: str) -> list[SseEvent]:
        self._buffer += chunk
        out: list[SseEvent] = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            line = line.rstrip("\r")
            if line == "":
                if self._data:
                    if self._id is not None:
                        self.last_event_id = self._id
                    out.append(SseEvent(self._id, self._event or "message", "\n".join(self._data)))
                self._data, self._event, self._id = [], "", None
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                self._id = value
            elif name == "retry" and value.isdigit():
                self.retry_ms = int(value)
        return out


async def iter_events(
    response: aiohttp.ClientResponse, parser: SseParser | None = None
) -> AsyncIterator[SseEvent]:
    parser = parser or SseParser()
    decoder = codecs.getincrementaldecoder("utf-8")()  # a chunk may end mid-character
    async for chunk in response.content.iter_any():
        for event in parser.feed(decoder.decode(chunk)):
            yield event
