"""The stored conversation: frozen msgspec Structs, JSON-serialisable, one per part kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from agentlog.projections.usage import Usage

# A tool call's states while it waits for its input or its end (the AI SDK's names).
WAITING = ("input-streaming", "input-available")
# A call that waits on a person, or on the turn that acts on their answer.
PARKED = ("approval-requested", "approval-responded")


class TextPart(msgspec.Struct, frozen=True, kw_only=True, tag="text"):
    """Assistant text from one content block of one model message."""

    message_id: str
    block_index: int
    text: str = ""
    done: bool = False
    parent_tool_call_id: str | None = None  # a subagent's: the call that started it


class ReasoningPart(msgspec.Struct, frozen=True, kw_only=True, tag="reasoning"):
    """The model's thinking from one content block of one model message."""

    message_id: str
    block_index: int
    text: str = ""
    done: bool = False
    parent_tool_call_id: str | None = None


class StepStartPart(msgspec.Struct, frozen=True, kw_only=True, tag="step-start"):
    """One model response began."""

    message_id: str


class ToolPart(msgspec.Struct, frozen=True, kw_only=True, tag="tool"):
    """A tool call; `state` uses the AI SDK's names."""

    tool_call_id: str
    tool_name: str
    state: str
    input_text: str = ""
    input: Any = None
    output: Any = None
    parent_tool_call_id: str | None = None
    error_text: str | None = None
    # Set once an approval was asked for the call; `approved` / `approval_reason` once answered.
    approval_id: str | None = None
    approved: bool | None = None
    approval_reason: str | None = None


class DataPart(msgspec.Struct, frozen=True, kw_only=True, tag="data"):
    """A `data-<name>` part: custom events and agent errors."""

    name: str
    data: Any = None


class FilePart(msgspec.Struct, frozen=True, kw_only=True, tag="file"):
    """A file the user sent with a prompt, by reference: its bytes are served by
    GET /v1/sessions/{id}/files/{sha256}."""

    sha256: str
    media_type: str
    size: int = 0
    filename: str | None = None


class SteeringPart(msgspec.Struct, frozen=True, kw_only=True, tag="steering-message"):
    """A user message added to the running turn (steering), before the step it reached."""

    id: str
    text: str


Part = TextPart | ReasoningPart | StepStartPart | ToolPart | DataPart | FilePart | SteeringPart


class RunInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the assistant message's metadata says about its run."""

    status: str = "running"
    agent: str | None = None
    model: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    usage: dict[str, Any] | None = None
    total_cost_usd: float | None = None
    cost: Usage | None = None
    duration_ms: int | None = None
    num_turns: int | None = None
    stop_reason: str | None = None
    error: str | None = None
    # Runs that continued this one after an approval: their events land in this message.
    continued_by: tuple[str, ...] = ()
    # Set when a newer run's start closed this open run as abandoned: that start's seq and
    # the run as it was, so a rewind to before that start reopens it as it was.
    superseded_at: int | None = None
    superseded_from: RunInfo | None = None


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One UIMessage; `run` is set on a run's assistant message (whose id is the run id)."""

    id: str
    role: str
    parts: tuple[Part, ...] = ()
    run: RunInfo | None = None
    # The seq of the event that created the message (a run's `run_started`, a standalone
    # `custom`): a rewind to before it drops the message. 0 in states stored before rewinds
    # existed (the projector folds such a state afresh at its session's first rewind).
    seq: int = 0


class ConversationState(msgspec.Struct, frozen=True, kw_only=True):
    """A session's conversation after the events up to `last_seq`."""

    last_seq: int = 0
    messages: tuple[Message, ...] = ()
    open_run_id: str | None = None


EMPTY = ConversationState()
