"""The encoder's picture of the run's message: its parts, as the client holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def joined(pieces: list[str]) -> str:
    """The text of streamed pieces, kept as a list so that many deltas cost linear time."""
    if len(pieces) > 1:
        pieces[:] = ["".join(pieces)]
    return pieces[0] if pieces else ""


@dataclass(slots=True)
class Block:
    """A text or reasoning part."""

    kind: str  # "text" | "reasoning"
    chunk_id: str
    step: int
    pieces: list[str] = field(default_factory=list)  # its text: see joined
    open: bool = True
    parent: str | None = None  # a subagent's: the tool call that started it


@dataclass(slots=True)
class Call:
    """A tool part; `state` uses the AI SDK's names, as in ui_messages."""

    tool_call_id: str
    tool_name: str
    step: int
    state: str
    input_pieces: list[str] = field(default_factory=list)  # the streamed JSON text
    input: Any = None
    output: Any = None
    error_text: str = ""
    approval_id: str | None = None
    approved: bool | None = None
    approval_reason: str | None = None
    parent: str | None = None


@dataclass(slots=True)
class Data:
    """A `data-<name>` part."""

    type: str
    data: Any
    step: int


@dataclass(slots=True)
class Steering:
    """A steering-message part: a user message added to the running turn."""

    id: str
    text: str
    step: int


Part = Block | Call | Data | Steering


def is_open(part: Part) -> bool:
    """The client holds the part as active: more deltas for it may come."""
    if type(part) is Block:
        return part.open
    return type(part) is Call and part.state == "input-streaming"
