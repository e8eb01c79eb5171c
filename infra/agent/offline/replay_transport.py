"""A claude-agent-sdk `Transport` that replays a recorded Claude CLI session, for offline tests.

A recording is the list of frames the SDK's subprocess transport exchanged with the real CLI,
each `{"dir": "sdk->cli" | "cli->sdk", "msg": {...}}`. The replay plays the CLI's side:

- `cli->sdk` frames are yielded in recorded order, through the SDK's real control-protocol
  layer (`Query`) and parser;
- every `sdk->cli` frame is a point where the CLI waited for the SDK: the replay stops there
  until the SDK has written the matching frame:
  * a prompt (`user`): the n-th recorded prompt waits for the n-th prompt the SDK writes, so a
    turn's frames never run ahead of its prompt;
  * a control request the SDK sent (`initialize`, `interrupt`, ...): matched by subtype, in
    order. Request ids are random per run, so the recorded id is mapped to the live one and
    the CLI's recorded `control_response` is rewritten to echo the live id;
  * the SDK's answer to a control request the CLI sent (`hook_callback`, `can_use_tool`,
    `mcp_message`): those requests are forwarded to the SDK with their recorded ids, so the
    application's hooks, permission callback and in-process MCP tools really run; the replay
    waits until the SDK has answered (success or error) and then swallows the answer: what the
    CLI did next is already in the recording, whatever the SDK answered.
- A control request the recording has no answer for is answered with an error at once, so the
  SDK fails fast instead of waiting out its 60 s timeout; a prompt beyond the recorded ones
  stops the replay with `ReplayStalled`.
- After the last frame the replay waits for `end_input()` or `close()` (the CLI exits when its
  stdin closes), then ends; if the recorded CLI exited with an error (its last result has
  `is_error`), `read_messages()` raises `ProcessError` like the subprocess transport does, and
  the SDK turns it into `ResultError`. A recording in which the SDK's own request was never
  answered (the CLI gave up during `initialize`) ends without waiting for stdin to close.
- `end_input()` stops only the waits that need a new SDK request or prompt; answers to
  forwarded requests can still arrive, as they can over a real pipe until the CLI exits.

Timing is not replayed: frames are yielded as fast as the SDK reads them.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import anyio
from claude_agent_sdk import ProcessError, Transport

logger = logging.getLogger(__name__)

SDK_TO_CLI = "sdk->cli"
CLI_TO_SDK = "cli->sdk"


class ReplayStalled(Exception):
    """The SDK did not write what the recording says the CLI waited for."""


def load_fixture(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a recording: one `{"dir": ..., "msg": {...}}` object per line."""
    frames: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            frame = json.loads(line)
            if (
                not isinstance(frame, dict)
                or frame.get("dir") not in (SDK_TO_CLI, CLI_TO_SDK)
                or not isinstance(frame.get("msg"), dict)
            ):
                raise ValueError(f"{path}:{number}: not a recorded frame")
            frames.append(frame)
    return frames


class ReplayTransport(Transport):
    """Plays the CLI's side of a recording to the SDK (see the module docstring).

    `exit_code` is the CLI's exit status after the last frame; None infers it from the last
    result frame replayed (1 if it has `is_error`, as the CLI does). `wait_timeout` bounds each
    wait for the SDK, in seconds, so a replay that diverges fails with `ReplayStalled` instead
    of hanging. A transport replays once.
    """

    def __init__(
        self,
        frames: list[dict[str, Any]],
        *,
        exit_code: int | None = None,
        wait_timeout: float = 30.0,
    ) -> None:
        self._script: list[tuple[str, dict[str, Any]]] = [
            (frame["dir"], copy.deepcopy(frame["msg"])) for frame in frames
        ]
        self._exit_code = exit_code
        self._last_result_is_error = False
        self._wait_timeout = wait_timeout

        recorded_requests = {
            pos: msg
            for pos, (direction, msg) in enumerate(self._script)
            if direction == SDK_TO_CLI and msg.get("type") == "control_request"
        }
        self._recorded_sdk_request_ids = {
            msg.get("request_id") for msg in recorded_requests.values()
        }
        self._recorded_request_subtypes = {
            pos: _request_subtype(msg) for pos, msg in recorded_requests.items()
        }
        answered = {
            _response_request_id(msg)
            for direction, msg in self._script
            if direction == CLI_TO_SDK and msg.get("type") == "control_response"
        }
        # The CLI never answered one of the SDK's requests: it exited on its own (e.g. a resume
        # of an unknown session fails before answering `initialize`).
        self._exits_unprompted = bool(self._recorded_sdk_request_ids - answered)

        self._position = 0
        self._connected = False
        self._closed = False
        self._input_ended = False
        self._changed: anyio.Event | None = None

        self._prompts_written = 0
        self._prompts_replayed = 0
        self._live_requests: dict[str, deque[str]] = {}
        self._live_id_for: dict[str, str] = {}
        self._answered_by_sdk: set[str] = set()
        self._outbox: deque[dict[str, Any]] = deque()
        self.written: list[dict[str, Any]] = []
        """Every frame the SDK wrote, parsed, in order (for assertions and debugging)."""

    # -- Transport -------------------------------------------------------------------------

    async def connect(self) -> None:
        self._changed = anyio.Event()
        self._connected = True

    def is_ready(self) -> bool:
        return self._connected and not self._closed

    async def write(self, data: str) -> None:
        # Never raises: an exception here loses the SDK's reply and stalls the run.
        try:
            for line in data.splitlines():
                if line.strip():
                    self._on_sdk_frame(json.loads(line))
        except Exception:
            logger.exception("replay: could not read what the SDK wrote: %.200r", data)
        finally:
            self._notify()

    async def end_input(self) -> None:
        self._input_ended = True
        self._notify()

    async def close(self) -> None:
        self._closed = True
        self._notify()

    def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        return self._replay()

    # -- what the SDK writes ---------------------------------------------------------------

    def _on_sdk_frame(self, msg: dict[str, Any]) -> None:
        self.written.append(msg)
        kind = msg.get("type")
        if kind == "user":
            self._prompts_written += 1
        elif kind == "control_request":
            subtype = _request_subtype(msg)
            request_id = str(msg.get("request_id"))
            queue = self._live_requests.setdefault(subtype, deque())
            if self._recorded_requests_ahead(subtype) > len(queue):
                queue.append(request_id)
            else:
                self._outbox.append(
                    {
                        "type": "control_response",
                        "response": {
                            "subtype": "error",
                            "request_id": request_id,
                            "error": f"replay: the recording has no {subtype!r} request here",
                        },
                    }
                )
        elif kind == "control_response":
            self._answered_by_sdk.add(str(_response_request_id(msg)))

    def _recorded_requests_ahead(self, subtype: str) -> int:
        return sum(
            1
            for pos, recorded in self._recorded_request_subtypes.items()
            if pos >= self._position and recorded == subtype
        )

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:  # None before connect(): no reader can be waiting yet
            self._changed = anyio.Event()
            changed.set()

    # -- the CLI's side --------------------------------------------------------------------

    async def _replay(self) -> AsyncIterator[dict[str, Any]]:
        stopped_early = False
        for position, (direction, msg) in enumerate(self._script):
            self._position = position
            while self._outbox:
                yield self._outbox.popleft()
            if self._closed:
                return
            if direction == CLI_TO_SDK:
                frame = self._as_sent(msg)
                if frame is not None:
                    if frame.get("type") == "result":
                        self._last_result_is_error = bool(frame.get("is_error"))
                    yield frame
                continue
            # The CLI waited here for the SDK. Never yield inside a cancel scope: each wait
            # is bounded on its own and the outbox is drained between waits.
            deadline = anyio.current_time() + self._wait_timeout
            while not self._sdk_has_written(msg):
                while self._outbox:
                    yield self._outbox.popleft()
                if self._closed:
                    return
                if self._input_ended and _needs_new_sdk_write(msg):
                    stopped_early = True
                    break
                if anyio.current_time() >= deadline:
                    raise ReplayStalled(
                        f"replay stalled at frame {position}: the SDK did not write "
                        f"{_describe(msg)} within {self._wait_timeout:g} s"
                    )
                await self._wait_for_change(deadline)
            if stopped_early:
                break

        self._position = len(self._script)
        if not self._exits_unprompted:
            # The CLI runs until its stdin closes.
            while not (self._closed or self._input_ended):
                while self._outbox:
                    yield self._outbox.popleft()
                if self._prompts_written > self._prompts_replayed:
                    raise ReplayStalled(
                        f"the SDK sent prompt #{self._prompts_written}; "
                        f"the recording has {self._prompts_replayed}"
                    )
                await self._wait_for_change(None)
        while self._outbox:
            yield self._outbox.popleft()
        exit_code = self._exit_code
        if exit_code is None:
            exit_code = 1 if self._last_result_is_error else 0
        if exit_code and not self._closed:
            raise ProcessError(
                f"Command failed with exit code {exit_code}",
                exit_code=exit_code,
                stderr="replayed recording",
            )

    async def _wait_for_change(self, deadline: float | None) -> None:
        changed = self._changed
        if changed is None:  # read before connect(): nothing can change
            raise ReplayStalled("read_messages() called before connect()")
        if deadline is None:
            await changed.wait()
            return
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            await changed.wait()

    def _sdk_has_written(self, recorded: dict[str, Any]) -> bool:
        kind = recorded.get("type")
        if kind == "user":
            if self._prompts_written > self._prompts_replayed:
                self._prompts_replayed += 1
                return True
            return False
        if kind == "control_request":
            queue = self._live_requests.get(_request_subtype(recorded))
            if not queue:
                return False
            self._live_id_for[str(recorded.get("request_id"))] = queue.popleft()
            return True
        if kind == "control_response":
            return str(_response_request_id(recorded)) in self._answered_by_sdk
        return True  # anything else the SDK wrote in the recording is not waited for

    def _as_sent(self, recorded: dict[str, Any]) -> dict[str, Any] | None:
        """The CLI's frame as it goes to this SDK: answers echo the live request ids."""
        frame = copy.deepcopy(recorded)
        if frame.get("type") != "control_response":
            return frame
        request_id = _response_request_id(frame)
        if request_id not in self._recorded_sdk_request_ids:
            return frame
        live_id = self._live_id_for.get(str(request_id))
        if live_id is None:
            return None  # the SDK never sent this request this time: nobody waits for it
        frame["response"]["request_id"] = live_id
        return frame


def _request_subtype(msg: dict[str, Any]) -> str:
    request = msg.get("request")
    return str(request.get("subtype")) if isinstance(request, dict) else ""


def _response_request_id(msg: dict[str, Any]) -> Any:
    response = msg.get("response")
    return response.get("request_id") if isinstance(response, dict) else None


def _needs_new_sdk_write(recorded: dict[str, Any]) -> bool:
    """A prompt or a new SDK request cannot come once stdin is closed; an answer still can."""
    return recorded.get("type") in ("user", "control_request")


def _describe(msg: dict[str, Any]) -> str:
    kind = msg.get("type")
    if kind == "control_request":
        return f"a {_request_subtype(msg)!r} control_request"
    if kind == "control_response":
        return f"its answer to control_request {_response_request_id(msg)!r}"
    if kind == "user":
        return "the next prompt"
    return repr(kind)
