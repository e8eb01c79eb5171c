"""The recorded Claude CLI sessions, and running the real SDK over one of them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    Message,
    ToolUseBlock,
)

from agentlog.domain.events import Event, type_of
from agentlog.infra.agent.offline.replay_transport import ReplayTransport, load_fixture
from agentlog.infra.agent.sdk.translate import SdkTranslator

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(
    os.environ.get("AGENTLOG_FIXTURES") or REPO_ROOT.parent / "shared" / "fixtures" / "claude-cli"
).resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# A replay that has not ended by then is stuck, not slow: every fixture replays in well under 1 s.
REPLAY_DEADLINE_S = 20.0


def fixture_names() -> list[str]:
    """Every recording, for parametrize; empty when the fixtures are missing."""
    return sorted(p.name for p in FIXTURES.glob("*.jsonl")) if FIXTURES.is_dir() else []


def fixture_path(name: str) -> Path:
    """The recording's path; a missing fixture directory fails under CI, else skips."""
    path = FIXTURES / name
    if not path.is_file():
        message = f"CLI recording {path} is missing (set AGENTLOG_FIXTURES)"
        if IN_CI:
            pytest.fail(message + "; CI=true requires it", pytrace=False)
        pytest.skip(message)
    return path


def recorded_prompts(frames: list[dict[str, Any]]) -> list[str]:
    return [
        frame["msg"]["message"]["content"]
        for frame in frames
        if frame["dir"] == "sdk->cli" and frame["msg"].get("type") == "user"
    ]


@dataclass
class Replayed:
    """What one replay produced: a translator and its events per turn."""

    transport: ReplayTransport
    turns: list[list[Event]] = field(default_factory=list)
    translators: list[SdkTranslator] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def events(self) -> list[Event]:
        return [event for turn in self.turns for event in turn]

    def types(self, turn: int = 0) -> list[str]:
        return [type_of(event) for event in self.turns[turn]]


async def replay(
    name: str,
    options: ClaudeAgentOptions | None = None,
    *,
    interrupt_on_tool_call: bool = False,
    translator_for_turn: Callable[[int], SdkTranslator] | None = None,
) -> Replayed:
    """Run `ClaudeSDKClient` over a recording, one recorded prompt per turn.

    Each turn is one agentlog run: a fresh `SdkTranslator("run-<n>")` (or
    `translator_for_turn(n)`), fed every message of the turn, then `finish()`. With
    `interrupt_on_tool_call`, `client.interrupt()` is called as soon as the first turn's first
    tool call appears, as the recording's client did.
    """
    frames = load_fixture(fixture_path(name))
    result = Replayed(ReplayTransport(frames, wait_timeout=10.0))
    with anyio.fail_after(REPLAY_DEADLINE_S):
        async with ClaudeSDKClient(
            options or ClaudeAgentOptions(), transport=result.transport
        ) as client:
            for number, prompt in enumerate(recorded_prompts(frames), start=1):
                translator = (
                    translator_for_turn(number)
                    if translator_for_turn is not None
                    else SdkTranslator(f"run-{number}")
                )
                events: list[Event] = []
                result.translators.append(translator)
                result.turns.append(events)
                await client.query(prompt)
                interrupt_pending = interrupt_on_tool_call and number == 1
                async for message in client.receive_response():
                    result.messages.append(message)
                    events.extend(translator.translate(message))
                    if interrupt_pending and _has_tool_call(message):
                        interrupt_pending = False
                        await client.interrupt()
                events.extend(translator.finish())
    return result


def _has_tool_call(message: Message) -> bool:
    return isinstance(message, AssistantMessage) and any(
        isinstance(block, ToolUseBlock) for block in message.content
    )
