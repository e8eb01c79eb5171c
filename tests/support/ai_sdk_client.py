"""A Python mirror of how the AI SDK's client (npm `ai` 7.0.173) builds a UIMessage from a stream.

What it mirrors, from the package's own sources (node_modules/ai/src/...):
- `uiMessageChunkSchema` (ui-message-stream/ui-message-chunks.ts), which `DefaultChatTransport`
  applies to every chunk: an unknown `type`, a missing required field (even one that may be
  `null`, like `input` or `data`) or an unknown `finishReason` is an error.
- `processUIMessageStream` (ui/process-ui-message-stream.ts), for the chunk types agentlog
  sends: a text or reasoning delta or end needs its start; tool input chunks find (or else push)
  the call's part in the *current step* only (the parts after the last `step-start`), while
  result and approval chunks find it anywhere; `reset-step` drops the current step's parts and
  forgets every open part; metadata is deep-merged (`mergeObjects`).
- `AbstractChat.resumeStream()` (ui/chat.ts), as `useChat({resume: true})` calls it on a replayed
  stream: the first `start` resets the message; an `error` chunk makes Chat's `onError` throw,
  so the reading stops there and the chat's status becomes "error". The chat holds the message
  as of its last `write()`, a snapshot (@ai-sdk/react's `replaceMessage` clones): `start-step`,
  `finish-step`, `abort`, and `finish` or `message-metadata` without metadata do not write.
JS `undefined` is an absent key, as `JSON.stringify` shows the message. A partial tool input
(the client parses the streamed JSON text as it grows) is the marker `PARTIAL_INPUT`: this
mirror does not parse partial JSON, and a message that ends holding it compares unequal.

tests/e2e/test_ai_sdk_client.py checks this mirror against the real package on the same streams.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

PARTIAL_INPUT = "<partial input: parsed by the client from the streamed JSON text>"
FINISH_REASONS = {"stop", "length", "content-filter", "tool-calls", "error", "interrupted", "other"}

_REQUIRED: dict[str, tuple[str, ...]] = {
    "text-start": ("id",),
    "text-delta": ("id", "delta"),
    "text-end": ("id",),
    "reasoning-start": ("id",),
    "reasoning-delta": ("id", "delta"),
    "reasoning-end": ("id",),
    "error": ("errorText",),
    "tool-input-start": ("toolCallId", "toolName"),
    "tool-input-delta": ("toolCallId", "inputTextDelta"),
    "tool-input-available": ("toolCallId", "toolName", "input"),
    "tool-input-error": ("toolCallId", "toolName", "input", "errorText"),
    "tool-approval-request": ("approvalId", "toolCallId"),
    "tool-approval-response": ("approvalId", "approved"),
    "tool-output-available": ("toolCallId", "output"),
    "tool-output-error": ("toolCallId", "errorText"),
    "tool-output-denied": ("toolCallId",),
    "start-step": (),
    "finish-step": (),
    "reset-step": (),
    "start": (),
    "finish": (),
    "abort": (),
    "message-metadata": ("messageMetadata",),
}


class StreamRejected(Exception):
    """The real client would fail on this chunk (schema or `UIMessageStreamError`)."""


@dataclass
class ChatResult:
    """What a Chat holds after the stream: the assistant message, status and error text.

    `live` is the stream state's message, which the chat shows at its next write.
    """

    message: dict[str, Any] | None
    status: str
    error: str | None
    live: dict[str, Any] | None = None


@dataclass
class _State:
    message: dict[str, Any]
    active_text: dict[str, dict[str, Any]] = field(default_factory=dict)
    active_reasoning: dict[str, dict[str, Any]] = field(default_factory=dict)
    partial_calls: dict[str, dict[str, Any]] = field(default_factory=dict)


def validate(chunk: dict[str, Any]) -> None:
    """`uiMessageChunkSchema`, for the fields agentlog sends."""
    kind = chunk.get("type")
    if not isinstance(kind, str):
        raise StreamRejected(f"chunk without a type: {chunk!r}")
    required = ("data",) if kind.startswith("data-") else _REQUIRED.get(kind)
    if required is None:
        raise StreamRejected(f"unknown chunk type {kind!r}")
    missing = [name for name in required if name not in chunk]
    if missing:
        raise StreamRejected(f"{kind} without {missing}")
    if kind == "finish" and chunk.get("finishReason", "stop") not in FINISH_REASONS:
        raise StreamRejected(f"unknown finishReason {chunk['finishReason']!r}")


def resume(chunks: list[dict[str, Any]]) -> ChatResult:
    """The assistant message a Chat builds from a replayed stream (`resumeStream()`)."""
    state: _State | None = None
    written: dict[str, Any] | None = None
    for chunk in chunks:
        validate(chunk)
        if chunk["type"] == "error":
            live = None if state is None else state.message
            return ChatResult(written, "error", chunk["errorText"], live)
        if state is None:
            if chunk["type"] != "start":
                raise StreamRejected("a replayed stream begins with its start chunk")
            state = _State({"id": "<generated by the client>", "role": "assistant", "parts": []})
        if _apply(state, copy.deepcopy(chunk)):
            written = copy.deepcopy(state.message)
    return ChatResult(written, "ready", None, None if state is None else state.message)


def continue_message(message: dict[str, Any], chunks: list[dict[str, Any]]) -> ChatResult:
    """The message after a `submit-message` request that continues it (`useChat` after
    `addToolApprovalResponse`): the stream state starts from the message as the chat holds it
    and its `start` does not reset it."""
    state = _State(copy.deepcopy(message))
    written: dict[str, Any] | None = copy.deepcopy(message)
    for chunk in chunks:
        validate(chunk)
        if chunk["type"] == "error":
            return ChatResult(written, "error", chunk["errorText"], state.message)
        if _apply(state, copy.deepcopy(chunk)):
            written = copy.deepcopy(state.message)
    return ChatResult(written, "ready", None, state.message)


def add_tool_approval_response(
    message: dict[str, Any], approval_id: str, approved: bool, reason: str | None = None
) -> dict[str, Any]:
    """`Chat.addToolApprovalResponse`: the asked part becomes approval-responded."""
    message = copy.deepcopy(message)
    for part in message["parts"]:
        approval = part.get("approval") or {}
        if part.get("state") == "approval-requested" and approval.get("id") == approval_id:
            part["state"] = "approval-responded"
            part["approval"] = {**approval, "id": approval_id, "approved": approved}
            if reason is not None:
                part["approval"]["reason"] = reason
    return message


def as_projected(message: dict[str, Any] | None, *, live: bool = False) -> dict[str, Any]:
    """The client's message in the projection's terms, for comparing the two.

    The client copies a reasoning chunk's id onto its reasoning part (`id`, optional in the AI
    SDK's `ReasoningUIPart`); the projection does not show one. With `live` (the run is still
    open), a call whose input streams holds, on the client, the input parsed from the partial
    JSON text and the text itself (`rawInput`); the projection holds neither (ui_messages).
    """
    assert message is not None, "the client built no message"
    parts = []
    for part in message["parts"]:
        part = dict(part)
        if part["type"] == "reasoning":
            part.pop("id", None)
        if live and part.get("state") == "input-streaming":
            part.pop("input", None)
            part.pop("rawInput", None)
        parts.append(part)
    return {**message, "parts": parts}


# -- processUIMessageStream ------------------------------------------------------------------


def _is_tool(part: dict[str, Any]) -> bool:
    return bool(part["type"].startswith("tool-") or part["type"] == "dynamic-tool")


def _current_step(state: _State) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = state.message["parts"]
    start = len(parts) - 1
    while start >= 0 and parts[start]["type"] != "step-start":
        start -= 1
    return parts[start + 1 :]


def _tool_invocation(state: _State, tool_call_id: str) -> dict[str, Any]:
    for part in _current_step(state):
        if _is_tool(part) and part["toolCallId"] == tool_call_id:
            return part
    everywhere: list[dict[str, Any]] = state.message["parts"]
    for candidate in everywhere[::-1]:
        if _is_tool(candidate) and candidate["toolCallId"] == tool_call_id:
            return candidate
    raise StreamRejected(f'No tool invocation found for tool call ID "{tool_call_id}".')


_UNDEFINED: Any = object()  # JS undefined: the key is absent


def _update_tool(
    state: _State,
    *,
    dynamic: bool,
    tool_name: str,
    tool_call_id: str,
    tool_state: str,
    input: Any = _UNDEFINED,
    output: Any = _UNDEFINED,
    error_text: Any = _UNDEFINED,
    raw_input: Any = _UNDEFINED,
    existing: dict[str, Any] | None = None,
    provider_metadata: Any = None,
) -> None:
    """`updateToolPart` / `updateDynamicToolPart`."""
    part = existing
    if part is None:
        for candidate in _current_step(state):
            same_kind = (
                candidate["type"] == "dynamic-tool"
                if dynamic
                else candidate["type"].startswith("tool-")
            )
            if same_kind and candidate["toolCallId"] == tool_call_id:
                part = candidate
                break
    if part is None:
        part = {"type": "dynamic-tool", "toolName": tool_name} if dynamic else {}
        if not dynamic:
            part["type"] = f"tool-{tool_name}"
        part["toolCallId"] = tool_call_id
        state.message["parts"].append(part)
    part["state"] = tool_state
    if dynamic:
        part["toolName"] = tool_name
    else:
        part["type"] = f"tool-{tool_name}"
    for name, value in (
        ("input", input),
        ("output", output),
        ("errorText", error_text),
        ("rawInput", raw_input),
    ):
        if value is _UNDEFINED:
            part.pop(name, None)
        else:
            part[name] = value
    if provider_metadata is not None:
        ended = tool_state in ("output-available", "output-error")
        part["resultProviderMetadata" if ended else "callProviderMetadata"] = provider_metadata


def _tool_name(part: dict[str, Any]) -> str:
    if part["type"] == "dynamic-tool":
        return str(part["toolName"])
    return str(part["type"].split("-", 1)[1])


def _merge(base: Any, overrides: Any) -> Any:
    """`mergeObjects`: a deep merge of objects; arrays and other values are replaced."""
    if base is None:
        return overrides
    result = dict(base)
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(name), dict):
            result[name] = _merge(result[name], value)
        else:
            result[name] = value
    return result


def _apply(state: _State, chunk: dict[str, Any]) -> bool:
    """Apply one chunk; True when the client then writes the message out."""
    kind = chunk["type"]
    message = state.message
    parts: list[dict[str, Any]] = message["parts"]
    if kind == "start":
        # A replayed stream's first start resets the message; agentlog sends one start.
        if "messageId" in chunk:
            message["id"] = chunk["messageId"]
        if chunk.get("messageMetadata") is not None:
            message["metadata"] = _merge(message.get("metadata"), chunk["messageMetadata"])
    elif kind in ("finish", "message-metadata"):
        if chunk.get("messageMetadata") is None:
            return False
        message["metadata"] = _merge(message.get("metadata"), chunk["messageMetadata"])
    elif kind in ("text-start", "reasoning-start"):
        part: dict[str, Any] = {"type": kind.split("-")[0], "text": "", "state": "streaming"}
        if chunk.get("providerMetadata") is not None:
            part["providerMetadata"] = chunk["providerMetadata"]
        if kind == "reasoning-start":
            part["id"] = chunk["id"]
            state.active_reasoning[chunk["id"]] = part
        else:
            state.active_text[chunk["id"]] = part
        parts.append(part)
    elif kind in ("text-delta", "reasoning-delta", "text-end", "reasoning-end"):
        active = state.active_text if kind.startswith("text") else state.active_reasoning
        block = active.get(chunk["id"])
        if block is None:
            raise StreamRejected(f'Received {kind} for missing part with ID "{chunk["id"]}".')
        if kind.endswith("-delta"):
            block["text"] += chunk["delta"]
        else:
            block["state"] = "done"
            del active[chunk["id"]]
        if chunk.get("providerMetadata") is not None:
            block["providerMetadata"] = chunk["providerMetadata"]
    elif kind == "tool-input-start":
        dynamic = bool(chunk.get("dynamic"))
        state.partial_calls[chunk["toolCallId"]] = {
            "text": "",
            "toolName": chunk["toolName"],
            "dynamic": dynamic,
        }
        _update_tool(
            state,
            dynamic=dynamic,
            tool_name=chunk["toolName"],
            tool_call_id=chunk["toolCallId"],
            tool_state="input-streaming",
            provider_metadata=chunk.get("providerMetadata"),
        )
    elif kind == "tool-input-delta":
        partial = state.partial_calls.get(chunk["toolCallId"])
        if partial is None:
            raise StreamRejected(f"tool-input-delta for missing tool call {chunk['toolCallId']}")
        partial["text"] += chunk["inputTextDelta"]
        _update_tool(
            state,
            dynamic=partial["dynamic"],
            tool_name=partial["toolName"],
            tool_call_id=chunk["toolCallId"],
            tool_state="input-streaming",
            input=PARTIAL_INPUT,
            raw_input=partial["text"],
        )
    elif kind == "tool-input-available":
        _update_tool(
            state,
            dynamic=bool(chunk.get("dynamic")),
            tool_name=chunk["toolName"],
            tool_call_id=chunk["toolCallId"],
            tool_state="input-available",
            input=chunk["input"],
            provider_metadata=chunk.get("providerMetadata"),
        )
    elif kind == "tool-input-error":
        existing = next(
            (
                p
                for p in _current_step(state)
                if _is_tool(p) and p["toolCallId"] == chunk["toolCallId"]
            ),
            None,
        )
        dynamic = (
            existing["type"] == "dynamic-tool"
            if existing is not None
            else bool(chunk.get("dynamic"))
        )
        _update_tool(
            state,
            dynamic=dynamic,
            tool_name=chunk["toolName"],
            tool_call_id=chunk["toolCallId"],
            tool_state="output-error",
            input=chunk["input"],
            error_text=chunk["errorText"],
        )
    elif kind in ("tool-output-available", "tool-output-error"):
        call = _tool_invocation(state, chunk["toolCallId"])
        dynamic = call["type"] == "dynamic-tool"
        ended = kind == "tool-output-available"
        _update_tool(
            state,
            dynamic=dynamic,
            tool_name=_tool_name(call),
            tool_call_id=chunk["toolCallId"],
            tool_state="output-available" if ended else "output-error",
            input=call.get("input", _UNDEFINED),
            output=chunk["output"] if ended else _UNDEFINED,
            error_text=_UNDEFINED if ended else chunk["errorText"],
            # Only the static tool part keeps its raw input on an error.
            raw_input=call.get("rawInput", _UNDEFINED) if not (ended or dynamic) else _UNDEFINED,
            existing=call,
        )
    elif kind == "tool-approval-request":
        call = _tool_invocation(state, chunk["toolCallId"])
        call["state"] = "approval-requested"
        call["approval"] = {"id": chunk["approvalId"]}
    elif kind == "tool-approval-response":
        asked = [
            p
            for p in parts
            if _is_tool(p) and p.get("approval", {}).get("id") == chunk["approvalId"]
        ]
        if not asked:
            raise StreamRejected(f"No tool invocation found for approval ID {chunk['approvalId']}")
        asked[0]["state"] = "approval-responded"
        asked[0]["approval"] = {**asked[0]["approval"], "id": chunk["approvalId"]}
        asked[0]["approval"]["approved"] = chunk["approved"]
        if chunk.get("reason") is not None:
            asked[0]["approval"]["reason"] = chunk["reason"]
    elif kind == "tool-output-denied":
        _tool_invocation(state, chunk["toolCallId"])["state"] = "output-denied"
    elif kind == "start-step":
        parts.append({"type": "step-start"})
        return False
    elif kind == "reset-step":
        current = len(_current_step(state))
        state.active_text.clear()
        state.active_reasoning.clear()
        state.partial_calls.clear()
        del parts[len(parts) - current :]
        return current > 0
    elif kind.startswith("data-"):
        parts.append(chunk)
    else:
        assert kind in ("finish-step", "abort")  # they change nothing in the message
        return False
    return True
