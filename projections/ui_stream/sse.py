"""The SSE framing of the stream: one `data:` frame per chunk, `DONE` last."""

from __future__ import annotations

import msgspec

from agentlog.projections.ui_stream.chunks import Chunk

DONE = b"data: [DONE]\n\n"

_encode = msgspec.json.Encoder().encode


def encode_sse(chunk: Chunk) -> bytes:
    """One chunk as an SSE frame: `data: <json>` and a blank line."""
    return b"data: " + _encode(chunk) + b"\n\n"
