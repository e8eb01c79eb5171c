"""One fold call's writable side: messages and parts thawed from the state, frozen at the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from msgspec.structs import replace

from agentlog.domain.events import RecordedEvent
from agentlog.projections.ui_messages.state import (
    ConversationState,
    DataPart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolPart,
)


class Streamed:
    """A text, reasoning or tool-input part being streamed: deltas are joined once, at freeze."""

    __slots__ = ("chunks", "part")

    def __init__(self, part: TextPart | ReasoningPart | ToolPart, chunks: list[str]) -> None:
        self.part = part
        self.chunks = chunks

    def freeze(self) -> Part:
        joined = "".join(self.chunks)
        if isinstance(self.part, ToolPart):
            return replace(self.part, input_text=joined)
        return replace(self.part, text=joined)


PartKey = tuple[str, str, int]


def key_of(part: Part | Streamed) -> PartKey | None:
    if type(part) is Streamed:
        part = part.part
    if type(part) is TextPart:
        return ("text", part.message_id, part.block_index)
    if type(part) is ReasoningPart:
        return ("reasoning", part.message_id, part.block_index)
    if type(part) is ToolPart:
        return tool_key(part.tool_call_id)
    return None


def tool_key(tool_call_id: str) -> PartKey:
    return ("tool", tool_call_id, 0)


class MessageBuilder:
    """A message thawed by one fold call, owning its parts list.

    Finding a keyed part looks at the newest part first (deltas almost always extend it) and
    only then builds an index, so a one-event `apply` of a delta never pays for one.
    """

    __slots__ = ("id", "index", "parts", "role", "run", "seq", "streamed")

    def __init__(self, message: Message) -> None:
        self.id = message.id
        self.role = message.role
        self.run = message.run
        self.seq = message.seq
        self.parts: list[Part | Streamed] = list(message.parts)
        self.index: dict[PartKey, int] | None = None
        self.streamed: list[int] = []  # positions that may hold a Streamed

    def find(self, key: PartKey) -> int | None:
        parts = self.parts
        if self.index is None:
            nearest = max(len(parts) - _SCAN, 0)
            for position in range(len(parts) - 1, nearest - 1, -1):
                if key_of(parts[position]) == key:
                    return position
            if nearest == 0:
                return None
            self.index = {}
            for position, part in enumerate(parts):
                part_key = key_of(part)
                if part_key is not None:
                    self.index[part_key] = position
        return self.index.get(key)

    def add(self, key: PartKey, part: Part | Streamed) -> None:
        if self.index is not None:
            self.index[key] = len(self.parts)
        if type(part) is Streamed:
            self.streamed.append(len(self.parts))
        self.parts.append(part)

    def extend(self, position: int, delta: str) -> None:
        """One more delta for the part at `position`, while it streams (text or reasoning not
        done, a tool input not complete); a part past streaming keeps what it has."""
        current = self.parts[position]
        if type(current) is Streamed:
            current.chunks.append(delta)
        elif type(current) is ToolPart:
            if current.state == "input-streaming":
                self._stream(position, Streamed(current, [current.input_text, delta]))
        elif isinstance(current, TextPart | ReasoningPart) and not current.done:
            self._stream(position, Streamed(current, [current.text, delta]))

    def _stream(self, position: int, streamed: Streamed) -> None:
        self.parts[position] = streamed
        self.streamed.append(position)

    def freeze(self) -> Message:
        parts = self.parts
        for position in self.streamed:
            part = parts[position]
            if type(part) is Streamed:
                parts[position] = part.freeze()
        # Every Streamed was just frozen, so the list holds Parts only.
        frozen = cast("tuple[Part, ...]", tuple(parts))
        return Message(id=self.id, role=self.role, parts=frozen, run=self.run, seq=self.seq)


_SCAN = 1


class OutsideWindow(LookupError):
    """A fold over the newest messages only (`hidden` older ones left out) needed one of the
    older ones, or might have: the caller folds the whole conversation instead."""


class Builder:
    """The transient side of one fold call. It owns every list and builder it creates.

    `hidden`: how many older messages the state leaves out (a window of the newest). Every
    lookup that fails in the window, a rewind and the tombstone raise OutsideWindow then, so
    a fold that returns is exactly the fold of the whole conversation, shifted by `hidden`.
    """

    __slots__ = (
        "hidden",
        "kept",
        "messages",
        "new_runs",
        "open_message",
        "open_run_id",
        "runs",
        "thawed",
    )

    def __init__(
        self, state: ConversationState, hidden: int = 0, new_runs: frozenset[str] = frozenset()
    ) -> None:
        self.hidden = hidden
        # Runs the caller knows no hidden message names (their first start is in these events).
        self.new_runs = new_runs
        self.messages: list[Message | MessageBuilder] = list(state.messages)
        self.thawed: list[int] = []
        # The fewest of the state's messages that stayed in place (a rewind or the tombstone
        # takes them off the end): every position from here on may hold another message.
        self.kept = len(state.messages)
        self.runs: dict[str, int] | None = None  # run id -> position, built on first need
        self.open_run_id = state.open_run_id
        self.open_message: MessageBuilder | None = None  # thawed on first use

    def freeze(self, last_seq: int) -> ConversationState:
        messages = self.messages
        for position in self.thawed:
            message = messages[position]
            assert isinstance(message, MessageBuilder)
            messages[position] = message.freeze()
        return ConversationState(
            last_seq=last_seq,
            # Every builder was just frozen, so the list holds Messages only.
            messages=cast("tuple[Message, ...]", tuple(messages)),
            open_run_id=self.open_run_id,
        )

    def thaw(self, position: int) -> MessageBuilder:
        message = self.messages[position]
        if isinstance(message, MessageBuilder):
            return message
        builder = MessageBuilder(message)
        self.messages[position] = builder
        self.thawed.append(position)
        return builder

    def append(self, message: Message) -> MessageBuilder:
        self.messages.append(message)
        return self.thaw(len(self.messages) - 1)

    def run_position(self, run_id: str) -> int | None:
        if self.runs is None:
            self.runs = {}
            for i, m in enumerate(self.messages):
                if m.run is not None:
                    self.runs[m.id] = i
                    for continuation in m.run.continued_by:
                        self.runs[continuation] = i
        found = self.runs.get(run_id)
        if found is None and self.hidden and run_id not in self.new_runs:
            raise OutsideWindow(run_id)
        return found

    def whole(self) -> None:
        """What follows needs the whole conversation (a rewind, the tombstone)."""
        if self.hidden:
            raise OutsideWindow("the whole conversation")

    def run_message(self, run_id: str | None) -> MessageBuilder | None:
        """The assistant message of run `run_id`, or of the open run when it is None."""
        if run_id is None or run_id == self.open_run_id:
            if self.open_message is None and self.open_run_id is not None:
                # While a run is open its message is the last one: until it ends, everything
                # lands inside it. So finding it never needs a scan.
                position: int | None = len(self.messages) - 1
                if not self.messages or self.messages[-1].id != self.open_run_id:
                    position = self.run_position(self.open_run_id)
                self.open_message = None if position is None else self.thaw(position)
            return self.open_message
        position = self.run_position(run_id)
        return None if position is None else self.thaw(position)

    def tool_part(
        self, tool_call_id: str, run_id: str | None
    ) -> tuple[MessageBuilder, int, ToolPart] | None:
        """The tool call's part (its streamed input joined), its message and its position
        there: looked up in its run's message, then in any, newest first. None: no such call.
        The caller writes the part back only when it moves it."""
        found = self._find_tool(tool_call_id, run_id)
        if found is None:
            return None
        message, position = found
        part = message.parts[position]
        if type(part) is Streamed:
            part = part.freeze()
        assert isinstance(part, ToolPart)
        return message, position, part

    def _find_tool(
        self, tool_call_id: str, run_id: str | None
    ) -> tuple[MessageBuilder, int] | None:
        key = tool_key(tool_call_id)
        message = self.run_message(run_id)
        found = None if message is None else message.find(key)
        if message is not None and found is not None:
            return message, found
        for position in range(len(self.messages) - 1, -1, -1):
            candidate = self.messages[position]
            if isinstance(candidate, MessageBuilder):
                found = candidate.find(key)
                if found is not None:
                    return candidate, found
            elif any(
                type(p) is ToolPart and p.tool_call_id == tool_call_id for p in candidate.parts
            ):
                thawed = self.thaw(position)
                found = thawed.find(key)
                assert found is not None
                return thawed, found
        if self.hidden:
            raise OutsideWindow(tool_call_id)
        return None

    def data_part(self, recorded: RecordedEvent, part: DataPart) -> None:
        run_id = recorded.event.run_id
        message = self.run_message(run_id)
        if message is None and run_id is not None:
            message = self.run_message(None)
        if message is None:
            standalone = Message(
                id=f"custom:{recorded.seq}", role="assistant", parts=(part,), seq=recorded.seq
            )
            self.messages.append(standalone)
        else:
            message.parts.append(part)


# What a fold does for one event type: change the builder in place.
Handler = Callable[[Builder, RecordedEvent], None]
