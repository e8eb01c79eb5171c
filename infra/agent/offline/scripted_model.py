"""A scripted Anthropic Messages API on loopback, so the real Claude CLI runs agent turns offline.

Point the CLI at it with `ANTHROPIC_BASE_URL=<base_url>` and any `ANTHROPIC_API_KEY` (see
`cli_env`). What the model says is decided by `scenarios.respond` from the request's `messages`;
this module only owns the wire: SSE framing, ids, signatures, token counts and HTTP errors.

Endpoints:
- `POST /v1/messages` (the CLI adds `?beta=true`): `"stream": true` gets SSE events
  (message_start, ping, content_block_start/delta/stop, message_delta, message_stop, or an
  `error` event mid-stream); `"stream": false` (the CLI's fallback after a broken stream) gets
  the whole message as JSON.
- `POST /v1/messages/count_tokens`: a token estimate.
- `GET|HEAD /api/hello`: the CLI's connectivity check, answered 200.
- anything else: logged, recorded, and answered 404 with an Anthropic error body.

Running the real CLI on it: `ClaudeAgentOptions(env=model.cli_env(tmp_home), setting_sources=[],
cwd=..., allowed_tools=[...])`. `bypassPermissions` is refused when running as root, so allow
tools by name. HTTP errors carry `x-should-retry: false` unless the scenario asks for retries;
the CLI honours it, so an error turn ends in under a second instead of ~140 s of backoff.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from agentlog.infra.agent.offline.scenarios import (
    DEMO_SHELL_COMMAND,
    BrokenStream,
    HttpError,
    Message,
    Reply,
    Text,
    Thinking,
    ToolCall,
    chunks,
    respond,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-4-5"
SCRIPTED_NAME = "agentlog-scripted"

# (messages, *, attempt: int, output_schema: dict | None) -> Reply, like scenarios.respond
Script = Callable[..., Reply]

_ALPHABET = string.ascii_letters + string.digits


def _random_id(prefix: str) -> str:
    """Ids shaped like the real API's: `msg_01` / `toolu_01` / `req_01` + 22 base62 chars."""
    return prefix + "01" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def _signature() -> str:
    return base64.b64encode(secrets.token_bytes(120)).decode()


def _estimate_tokens(value: Any) -> int:
    """About four characters a token, like the API's counts for English and JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def _conversation_key(messages: Any) -> str:
    # The CLI moves cache_control markers between attempts; a retry is the same conversation.
    canonical = json.dumps(_strip_cache_control(messages), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# Calls longer than this are read on a worker thread (see `ScriptedModel._messages`).
_OFF_LOOP_CHARS = 256 * 1024


def _parsed(raw: str) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _read_call(raw: str) -> tuple[Any, str, int]:
    """A messages call's body, its conversation's key (for retries) and its input tokens;
    the key and count are empty when the body is no call."""
    body = _parsed(raw)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return body, "", 0
    messages = body["messages"]
    tokens = _estimate_tokens([body.get("system"), messages, body.get("tools")])
    return body, _conversation_key(messages), tokens


def _error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def _output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a structured-output request asks for (the CLI's session-title call)."""
    config = body.get("output_config") or {}
    output_format = config.get("format") or body.get("output_format") or {}
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        schema = output_format.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def _tool_names(body: dict[str, Any]) -> frozenset[str]:
    """The tools the CLI offered the model in this request."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return frozenset()
    return frozenset(
        t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)
    )


def _thinking_on(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


@dataclass(frozen=True)
class Call:
    """One HTTP request the server received, and how it was answered."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any  # parsed JSON, else the raw text, else None
    answer: str  # "stream", "stream+error", "json", "http 529", "count_tokens", "not found", ...


class ScriptedModel:
    """The fake model server. `requests` holds the JSON body of every `POST /v1/messages`, in
    arrival order; `calls` holds every HTTP request of any kind, with headers and how it was
    answered. `delta_delay` pauses between streamed deltas so a watcher can see them arrive.
    """

    def __init__(
        self,
        *,
        script: Script = respond,
        delta_delay: float = 0.0,
        shell_command: str | None = None,
    ) -> None:
        self.script = script
        self.delta_delay = delta_delay
        # What the shell scenario runs: the operator's (tests'), never a caller's.
        self.shell_command = shell_command or DEMO_SHELL_COMMAND
        self.requests: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.base_url: str | None = None
        self._attempts: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on 127.0.0.1 on a free port; return the base URL for ANTHROPIC_BASE_URL."""
        if self.base_url is not None:
            return self.base_url
        # The CLI's requests carry the whole system prompt and tool schemas (~100 KB) and grow
        # with the conversation; aiohttp's default 1 MB cap would reject long sessions.
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/api/hello", self._hello)  # the CLI's connectivity check (HEAD)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        runner, self._runner, self.base_url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def cli_env(self, home: str | Path, **extra: str) -> dict[str, str]:
        """Environment for the Claude CLI to use this model and nothing else."""
        if self.base_url is None:
            raise RuntimeError("ScriptedModel.start() first")
        return {
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-scripted-model",
            "HOME": str(home),
            # No update checks, telemetry or error reports: there is no network to reach.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            **extra,
        }

    # -- handlers -------------------------------------------------------------------------------

    def _record(self, request: web.Request, body: Any, answer: str) -> None:
        self.calls.append(
            Call(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
                answer=answer,
            )
        )

    @staticmethod
    async def _body(request: web.Request) -> Any:
        return _parsed(await request.text())

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        request_id = _random_id("req_")
        raw = await request.text()
        if len(raw) > _OFF_LOOP_CHARS:
            # A long session's call carries its whole conversation (megabytes at 100k
            # events); parsed, keyed and counted here it held the serving process's event
            # loop ~0.2 s a call. A worker thread yields the loop every switch interval.
            body, key, input_tokens = await asyncio.to_thread(_read_call, raw)
        else:
            body, key, input_tokens = _read_call(raw)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._record(request, body, "http 400")
            return web.json_response(
                _error_body("invalid_request_error", "messages: field required", request_id),
                status=400,
                headers={"request-id": request_id},
            )
        self.requests.append(body)
        messages = body["messages"]
        attempt = self._attempts[key]
        self._attempts[key] += 1
        reply = self.script(
            messages,
            attempt=attempt,
            output_schema=_output_schema(body),
            tools=_tool_names(body),
            shell_command=self.shell_command,
            system=body.get("system"),
        )
        streaming = bool(body.get("stream"))
        if isinstance(reply, BrokenStream) and not streaming:
            # A whole-message request cannot break halfway; it fails up front instead.
            reply = HttpError(529, reply.error_type, reply.error_message)
        if isinstance(reply, HttpError):
            self._record(request, body, f"http {reply.status}")
            return web.json_response(
                _error_body(reply.error_type, reply.error_message, request_id),
                status=reply.status,
                # The CLI honours this header: "false" ends the turn at once instead of after
                # ~10 retries with backoff (~140 s), whatever CLAUDE_CODE_MAX_RETRIES says.
                headers={
                    "request-id": request_id,
                    "x-should-retry": "true" if reply.should_retry else "false",
                },
            )
        if isinstance(reply, Message) and not _thinking_on(body):
            # The API only returns thinking blocks to requests that turn thinking on.
            reply = Message(tuple(b for b in reply.blocks if not isinstance(b, Thinking)))
        model = SCRIPTED_NAME  # what answered: the scripted model, whatever was asked for
        if isinstance(reply, Message) and not streaming:
            self._record(request, body, "json")
            return web.json_response(
                _whole_message(reply, model, input_tokens), headers={"request-id": request_id}
            )
        self._record(request, body, "stream+error" if isinstance(reply, BrokenStream) else "stream")
        return await self._stream(request, reply, model, input_tokens, request_id)

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self._record(request, body, "count_tokens")
        tokens = _estimate_tokens(
            [body.get("system"), body.get("messages"), body.get("tools")]
            if isinstance(body, dict)
            else body
        )
        return web.json_response({"input_tokens": tokens})

    async def _hello(self, request: web.Request) -> web.Response:
        self._record(request, None, "hello")
        return web.json_response({"message": "hello"})

    async def _unknown(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        log.warning("scripted model: no route for %s %s", request.method, request.path_qs)
        self._record(request, body, "not found")
        return web.json_response(
            _error_body(
                "not_found_error",
                f"{request.method} {request.path} is not scripted",
                _random_id("req_"),
            ),
            status=404,
        )

    # -- streaming ------------------------------------------------------------------------------

    async def _stream(
        self,
        request: web.Request,
        reply: Message | BrokenStream,
        model: str,
        input_tokens: int,
        request_id: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "request-id": request_id,
            }
        )
        await response.prepare(request)
        events = (
            _message_events(reply, model, input_tokens)
            if isinstance(reply, Message)
            else _broken_events(reply, model, input_tokens, request_id)
        )
        try:
            for name, data in events:
                if self.delta_delay and name == "content_block_delta":
                    await asyncio.sleep(self.delta_delay)
                frame = f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                await response.write(frame.encode())
            await response.write_eof()
        except ConnectionResetError:
            # The CLI dropped the stream (an interrupt, or its own timeout): nothing to finish.
            log.debug("scripted model: client left mid-stream")
        return response


Event = tuple[str, dict[str, Any]]


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _message_start(model: str, input_tokens: int) -> Event:
    return (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": _random_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _usage(input_tokens, 1),
            },
        },
    )


def _output_tokens(blocks: Sequence[Thinking | Text | ToolCall]) -> int:
    total = 0
    for block in blocks:
        if isinstance(block, ToolCall):
            total += _estimate_tokens(block.input) + 10
        else:
            total += _estimate_tokens(block.text)
    return max(1, total)


def _block_events(index: int, block: Thinking | Text | ToolCall) -> list[Event]:
    def delta(payload: dict[str, Any]) -> Event:
        return (
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": payload},
        )

    if isinstance(block, Thinking):
        start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [delta({"type": "thinking_delta", "thinking": c}) for c in chunks(block.text, 48)]
        deltas.append(delta({"type": "signature_delta", "signature": _signature()}))
    elif isinstance(block, Text):
        start = {"type": "text", "text": ""}
        deltas = [delta({"type": "text_delta", "text": c}) for c in chunks(block.text, 32)]
    else:
        start = {"type": "tool_use", "id": _random_id("toolu_"), "name": block.name, "input": {}}
        # Like the API: an empty first fragment, then the JSON in pieces that split tokens.
        pieces = ["", *chunks(json.dumps(block.input, ensure_ascii=False), 12)]
        deltas = [delta({"type": "input_json_delta", "partial_json": p}) for p in pieces]
    return [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        ),
        *deltas,
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def _message_events(reply: Message, model: str, input_tokens: int) -> list[Event]:
    events = [_message_start(model, input_tokens), ("ping", {"type": "ping"})]
    for index, block in enumerate(reply.blocks):
        events.extend(_block_events(index, block))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": _output_tokens(reply.blocks)},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _broken_events(
    reply: BrokenStream, model: str, input_tokens: int, request_id: str
) -> list[Event]:
    events = [_message_start(model, input_tokens), ("ping", {"type": "ping"})]
    events.extend(_block_events(0, Text(reply.text))[:-1])  # the block never closes
    events.append(("error", _error_body(reply.error_type, reply.error_message, request_id)))
    return events


def _whole_message(reply: Message, model: str, input_tokens: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in reply.blocks:
        if isinstance(block, Thinking):
            content.append({"type": "thinking", "thinking": block.text, "signature": _signature()})
        elif isinstance(block, Text):
            content.append({"type": "text", "text": block.text})
        else:
            content.append(
                {
                    "type": "tool_use",
                    "id": _random_id("toolu_"),
                    "name": block.name,
                    "input": block.input,
                }
            )
    return {
        "id": _random_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": _usage(input_tokens, _output_tokens(reply.blocks)),
    }
