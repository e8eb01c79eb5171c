"""ReplayTransport plays the CLI's side of a recording to the SDK's real control protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    Message,
    ResultError,
    ResultMessage,
    query,
)

from agentlog.infra.agent.offline.replay_transport import (
    ReplayStalled,
    ReplayTransport,
    load_fixture,
)

from .cli_recordings import fixture_path, recorded_prompts


def frames(name: str) -> list[dict[str, Any]]:
    return load_fixture(fixture_path(name))


async def test_query_ends_once_the_sdk_closes_input() -> None:
    recording = frames("text-streaming.jsonl")
    transport = ReplayTransport(recording)
    with anyio.fail_after(10):
        messages = [
            m
            async for m in query(
                prompt=recorded_prompts(recording)[0],
                options=ClaudeAgentOptions(),
                transport=transport,
            )
        ]

    assert isinstance(messages[-1], ResultMessage)
    initialize = transport.written[0]
    assert initialize["request"]["subtype"] == "initialize"
    assert initialize["request_id"] != "req_1_489512d6"  # the live id is random ...
    # ... and the SDK accepted the recorded answer only because it echoed the live id.
    assert transport.written[1]["type"] == "user"


async def test_query_yields_the_error_result_then_raises_result_error() -> None:
    recording = frames("model-error.jsonl")
    seen: list[Message] = []
    with anyio.fail_after(10), pytest.raises(ResultError, match="API Error: 529"):
        async for message in query(
            prompt=recorded_prompts(recording)[0],
            options=ClaudeAgentOptions(),
            transport=ReplayTransport(recording),
        ):
            seen.append(message)

    assert isinstance(seen[-1], ResultMessage) and seen[-1].is_error


async def test_a_resume_of_an_unknown_session_fails_at_connect() -> None:
    # The CLI answers `initialize` with nothing but an error result, then exits with 1.
    transport = ReplayTransport(frames("multi-turn-resume-missing.jsonl"))
    client = ClaudeSDKClient(ClaudeAgentOptions(resume="023c7ca4"), transport=transport)
    with (
        anyio.fail_after(10),
        pytest.raises(ResultError, match="No conversation found with session ID"),
    ):
        await client.connect()


async def test_a_request_the_recording_lacks_fails_fast() -> None:
    transport = ReplayTransport(frames("multi-turn-turn1.jsonl"))
    with anyio.fail_after(10):
        async with ClaudeSDKClient(ClaudeAgentOptions(), transport=transport) as client:
            await client.query("Remember the number 42.")
            async for _ in client.receive_response():
                pass
            with pytest.raises(Exception, match="the recording has no 'interrupt' request"):
                await client.interrupt()


async def test_a_prompt_beyond_the_recording_stalls_loudly() -> None:
    transport = ReplayTransport(frames("multi-turn-turn1.jsonl"))
    with anyio.fail_after(10):
        async with ClaudeSDKClient(ClaudeAgentOptions(), transport=transport) as client:
            await client.query("Remember the number 42.")
            async for _ in client.receive_response():
                pass
            await client.query("And another thing")
            with pytest.raises(ReplayStalled, match="prompt #2"):
                async for _ in client.receive_response():
                    pass


async def test_a_missing_sdk_write_times_out_with_the_frame_it_waited_for() -> None:
    transport = ReplayTransport(frames("multi-turn-turn1.jsonl"), wait_timeout=0.2)
    await transport.connect()
    await transport.write(
        json.dumps(
            {"type": "control_request", "request_id": "r1", "request": {"subtype": "initialize"}}
        )
    )
    with (
        anyio.fail_after(5),
        pytest.raises(ReplayStalled, match="frame 2: the SDK did not write the next prompt"),
    ):
        async for _ in transport.read_messages():
            pass


async def test_reading_ends_when_the_transport_closes() -> None:
    transport = ReplayTransport(frames("multi-turn-turn1.jsonl"))
    await transport.connect()
    assert transport.is_ready()

    async def close_soon() -> None:
        await anyio.sleep(0.05)
        await transport.close()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(close_soon)
            read = [m async for m in transport.read_messages()]
    assert read == []  # stuck before the initialize answer: nothing the SDK asked for
    assert not transport.is_ready()


async def test_write_never_raises() -> None:
    transport = ReplayTransport(frames("multi-turn-turn1.jsonl"))
    await transport.write('{"type": "user"}\n')  # before connect()
    await transport.connect()
    await transport.write("not json\n")
    await transport.write('{"type": "control_request"}\n')
    await transport.write('{"type": "control_response", "response": null}\n')
    await transport.write("[1, 2]\n")
    await transport.close()
    await transport.write('{"type": "user"}\n')  # after close()


def test_load_fixture_rejects_a_line_that_is_not_a_frame(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"dir": "cli->sdk", "msg": {"type": "system"}}\n\n{"type": "user"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: not a recorded frame"):
        load_fixture(path)
