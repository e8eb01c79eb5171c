"""The real AI SDK client builds, from a run's UI message stream, the projection's message.

tests/js/assemble.mjs runs the npm `ai` package (pinned in tests/js/package.json) the way
`useChat({resume: true})` does on page load: a Chat whose DefaultChatTransport GETs the stream,
parses the SSE bytes `encode_sse` produced against `uiMessageChunkSchema` (an unknown chunk type
or a delta without its start fails the chat), and builds the assistant message. Its message must
equal `to_ui_messages(fold(log), run_active=False)`'s, part by part and field by field, with
metadata; the normalisations are `as_projected` (the client's optional reasoning part `id`)
and reading node's numbers as doubles, which is all JS has.
The same streams also go through the Python mirror the unit tests use, which must agree.

`npm ci` runs once when tests/js/node_modules lacks the pinned `ai`. Without node or npm the
test is skipped, unless CI=true, where it fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from agentlog.domain.events import (
    AgentErrorReported,
    AgentInitialized,
    CustomEventRecorded,
    HeartbeatRecorded,
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    StepFinished,
    StepStarted,
    TextCompleted,
    TextDelta,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
)
from agentlog.projections.ui_messages import fold, to_ui_messages
from agentlog.projections.ui_stream import DONE, encode_sse, run_chunks
from tests.conftest import IN_CI, ROOT
from tests.strategies import record, session_logs
from tests.support.ai_sdk_client import as_projected, resume

JS_DIR = ROOT / "tests" / "js"
R = "run1"

pytestmark = pytest.mark.slow  # a node process, and `npm ci` on the first run


class AiSdk:
    """One `node assemble.mjs` process: a JSON line in, a JSON line out, per stream."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def resume(self, messages: list[dict[str, Any]], sse: bytes) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        case = {"messages": messages, "sse": sse.decode()}
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"assemble.mjs exited with {self.process.poll()}"
        # Every JS number is a double: read them all as floats, so a large integral float
        # that JS prints in integer form compares as the same number.
        result: dict[str, Any] = json.loads(line, parse_int=float)
        assert "crashed" not in result, result.get("crashed")
        return result


def run_chat_script(script: str, case: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Run one of tests/js's chat drivers (a real `Chat` against a live server) on one case: the
    case as a JSON line in, the chat's result as JSON out. Numbers are read as floats, as JS
    holds them. Blocking: call it through `asyncio.to_thread` from a test."""
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(JS_DIR / script)],
        cwd=JS_DIR,
        input=json.dumps(case) + "\n",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout, parse_int=float)
    assert "crashed" not in result, result["crashed"]
    return result


def _pinned_version() -> str:
    return str(json.loads((JS_DIR / "package.json").read_text())["dependencies"]["ai"])


def _installed_version() -> str | None:
    installed = JS_DIR / "node_modules" / "ai" / "package.json"
    return str(json.loads(installed.read_text())["version"]) if installed.is_file() else None


@pytest.fixture(scope="module")
def ai_sdk() -> Iterator[AiSdk]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "node and npm are needed to run the AI SDK's client (tests/js)"
        if IN_CI:
            pytest.fail(message + "; CI=true requires them", pytrace=False)
        pytest.skip(message)
    # Several test files use this fixture, in several xdist workers: one `npm ci` at a time,
    # and the others then find the tree installed.
    with (JS_DIR / "node_modules.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() != _pinned_version():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=JS_DIR,
                check=True,
                timeout=600,
                env={**os.environ, "NO_UPDATE_NOTIFIER": "1"},
            )
    assert _installed_version() == _pinned_version()
    process = subprocess.Popen(
        [node, str(JS_DIR / "assemble.mjs")],
        cwd=JS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        yield AiSdk(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sse_of(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(encode_sse(chunk) for chunk in chunks) + DONE


def assert_same_message(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Field by field, so a failure names the part and the field."""
    got = as_projected(got)
    assert (got["id"], got["role"]) == (expected["id"], expected["role"])
    assert got.get("metadata") == expected.get("metadata")
    assert [p["type"] for p in got["parts"]] == [p["type"] for p in expected["parts"]]
    for index, (part, wanted) in enumerate(zip(got["parts"], expected["parts"], strict=True)):
        for field in sorted(part.keys() | wanted.keys()):
            assert part.get(field, "<absent>") == wanted.get(field, "<absent>"), (
                f"part {index} ({wanted['type']}), field {field!r}"
            )


def check_run(
    ai_sdk: AiSdk,
    events: list[RecordedEvent],
    run_id: str,
    *,
    before: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Replay `run_id` into a chat holding `before` (default: the messages before the run's
    reply); the chat must then hold the projection's messages up to that reply."""
    expected = to_ui_messages(fold(events), run_active=False)
    at = next(i for i, m in enumerate(expected) if m["id"] == run_id)
    chunks = run_chunks(events, run_id)
    result = ai_sdk.resume(expected[:at] if before is None else before, sse_of(chunks))
    assert result["requests"] == [{"method": "GET", "url": "/api/chat/session-1/stream"}]
    assert result["messages"][:at] == expected[:at]
    assert len(result["messages"]) == at + 1
    assert_same_message(result["messages"][at], expected[at])
    failed = expected[at]["metadata"]["status"] == "failed"
    assert result["status"] == ("error" if failed else "ready"), result["error"]
    mirror = resume(chunks)
    assert as_projected(mirror.message) == as_projected(result["messages"][at])
    assert (mirror.status, mirror.error) == (result["status"], result["error"])
    return result


# -- representative runs ---------------------------------------------------------------------


def _tool_input(call: str, name: str, index: int, *pieces: str) -> list[SessionEvent]:
    return [
        ToolInputDelta(
            run_id=R, message_id="m1", block_index=index, tool_call_id=call, tool_name=name, delta=p
        )
        for p in pieces
    ]


def text_with_reasoning_deltas() -> list[SessionEvent]:
    return [
        AgentInitialized(run_id=R, model="claude-sonnet-4-5"),
        StepStarted(run_id=R, message_id="m1"),
        ReasoningDelta(run_id=R, message_id="m1", block_index=0, delta="The user "),
        ReasoningDelta(run_id=R, message_id="m1", block_index=0, delta="says hi."),
        ReasoningCompleted(run_id=R, message_id="m1", block_index=0, text="The user says hi."),
        TextDelta(run_id=R, message_id="m1", block_index=1, delta="Hel"),
        HeartbeatRecorded(run_id=R),
        TextDelta(run_id=R, message_id="m1", block_index=1, delta="lo"),
        # The completion carries more than the deltas did: the rest goes as one delta.
        TextCompleted(run_id=R, message_id="m1", block_index=1, text="Hello! How can I help?"),
        StepFinished(run_id=R, message_id="m1", stop_reason="end_turn"),
        RunFinished(
            run_id=R,
            result="Hello! How can I help?",
            stop_reason="end_turn",
            num_turns=1,
            duration_ms=1200,
            total_cost_usd=0.0031,
            usage={"input_tokens": 12, "output_tokens": 9, "cache": {"read": 0}},
        ),
    ]


def parallel_tools_one_failing() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        TextCompleted(run_id=R, message_id="m1", block_index=0, text="Let me look."),
        *_tool_input("t1", "Bash", 1, '{"comm', 'and": "ls"}'),
        ToolCallStarted(run_id=R, tool_call_id="t1", tool_name="Bash", input={"command": "ls"}),
        ToolCallStarted(run_id=R, tool_call_id="t2", tool_name="Read", input={"path": "/nope"}),
        *_tool_input("t3", "mcp__demo__add", 3, '{"a": 1, ', '"b": 2}'),
        ToolCallStarted(
            run_id=R, tool_call_id="t3", tool_name="mcp__demo__add", input={"a": 1, "b": 2}
        ),
        StepFinished(run_id=R, message_id="m1", stop_reason="tool_use"),
        ToolCallSucceeded(run_id=R, tool_call_id="t3", output=[{"type": "text", "text": "3"}]),
        ToolCallFailed(run_id=R, tool_call_id="t2", error_text="ENOENT: no such file"),
        ToolCallSucceeded(
            run_id=R,
            tool_call_id="t1",
            output="a.txt\nb.txt",
            structured_output={"stdout": "a.txt\nb.txt", "stderr": ""},
        ),
        StepStarted(run_id=R, message_id="m2"),
        TextDelta(run_id=R, message_id="m2", block_index=0, delta="Two files; "),
        TextCompleted(run_id=R, message_id="m2", block_index=0, text="Two files; 1+2=3."),
        StepFinished(run_id=R, message_id="m2", stop_reason="end_turn"),
        RunFinished(run_id=R, result="Two files; 1+2=3.", stop_reason="end_turn", num_turns=2),
    ]


def a_denied_tool() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        ToolCallStarted(
            run_id=R, tool_call_id="t1", tool_name="Bash", input={"command": "rm -rf /"}
        ),
        StepFinished(run_id=R, message_id="m1", stop_reason="tool_use"),
        ToolCallDenied(run_id=R, tool_call_id="t1", reason="Bash: rm is not allowed"),
        StepStarted(run_id=R, message_id="m2"),
        TextCompleted(run_id=R, message_id="m2", text="I am not allowed to do that."),
        RunFinished(run_id=R, stop_reason="end_turn"),
    ]


def a_model_error() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        TextDelta(run_id=R, message_id="m1", block_index=0, delta="Working on"),
        AgentErrorReported(run_id=R, kind="api_error", message="Overloaded", status=529),
        StepFinished(run_id=R, message_id="m1", abandoned=True),
        RunFinished(
            run_id=R,
            is_error=True,
            result="API Error: 529 Overloaded",
            subtype="error_during_execution",
            api_error_status=529,
        ),
    ]


def a_crashed_cli() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        ToolCallStarted(run_id=R, tool_call_id="t1", tool_name="Bash", input={"command": "make"}),
        ToolCallFailed(
            run_id=R, tool_call_id="t1", error_text="interrupted: CLI exited", interrupted=True
        ),
        RunFailed(run_id=R, error="CLI exited with code 1", terminal_reason="process_error"),
    ]


def a_cancel_with_a_dangling_tool_call() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        ReasoningDelta(run_id=R, message_id="m1", block_index=0, delta="Hmm, let me"),
        ToolCallStarted(
            run_id=R, tool_call_id="t1", tool_name="Bash", input={"command": "sleep 600"}
        ),
        *_tool_input("t2", "Write", 2, '{"path": "/tmp/x", "con'),
        RunCancelled(run_id=R, reason="user"),
    ]


def custom_data_events() -> list[SessionEvent]:
    return [
        CustomEventRecorded(run_id=R, name="progress", data={"pct": 0}),
        StepStarted(run_id=R, message_id="m1"),
        CustomEventRecorded(name="progress", data={"pct": 50, "files": ["a", "b"]}),
        CustomEventRecorded(run_id=R, name="ticket-linked", data=None),
        CustomEventRecorded(run_id="not-a-run", name="note", data="shown on the open run"),
        TextCompleted(run_id=R, message_id="m1", text="Done."),
        CustomEventRecorded(run_id=R, name="progress", data={"pct": 100}),
        RunFinished(run_id=R, stop_reason="end_turn"),
    ]


def a_rewritten_completion() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        ReasoningDelta(run_id=R, message_id="m1", block_index=0, delta="still thinking"),
        ToolCallStarted(run_id=R, tool_call_id="t1", tool_name="Read", input={"path": "a"}),
        ToolCallSucceeded(run_id=R, tool_call_id="t1", output="content"),
        CustomEventRecorded(run_id=R, name="progress", data=1),
        TextDelta(run_id=R, message_id="m1", block_index=2, delta="Helo wrold"),
        TextCompleted(run_id=R, message_id="m1", block_index=2, text="Hello world"),
        RunFinished(run_id=R, stop_reason="end_turn"),
    ]


def a_late_safety_net() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        ToolCallStarted(
            run_id=R, tool_call_id="t1", tool_name="Bash", input={"command": "sleep 9"}
        ),
        RunCancelled(run_id=R, reason="shutdown"),
        ToolCallFailed(
            run_id=R, tool_call_id="t1", error_text="interrupted: shutdown", source="safety-net"
        ),
    ]


def a_log_that_stops() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        TextDelta(run_id=R, message_id="m1", block_index=0, delta="Halfway"),
        *_tool_input("t1", "mcp__demo__add", 1, '{"a":'),
        StepStarted(run_id=R, message_id="m2"),
    ]


def superseded_by_the_next_run() -> list[SessionEvent]:
    return [
        StepStarted(run_id=R, message_id="m1"),
        ToolCallStarted(run_id=R, tool_call_id="t1", tool_name="Bash", input={}),
        RunStarted(run_id="run2", prompt="hello again"),
        TextCompleted(run_id="run2", message_id="m9", text="Hi."),
        RunFinished(run_id="run2"),
    ]


def a_subagent() -> list[SessionEvent]:
    """What the runner records for the `subagent` scenario (tests/agent/test_subagents.py),
    one subagent call cancelled mid-way: its parts nest under the Agent call by metadata."""
    sub = {"parent_tool_call_id": "agent1"}
    return [
        StepStarted(run_id=R, message_id="m1"),
        TextCompleted(run_id=R, message_id="m1", text="I'll ask a subagent."),
        ToolCallStarted(run_id=R, tool_call_id="agent1", tool_name="Agent", input={"prompt": "x"}),
        StepFinished(run_id=R, message_id="m1", stop_reason="tool_use"),
        StepStarted(run_id=R, message_id="m2", **sub),
        ReasoningCompleted(run_id=R, message_id="m2", text="Adding.", **sub),
        ToolCallStarted(run_id=R, tool_call_id="add1", tool_name="mcp__demo__add", input={}, **sub),
        ToolCallStarted(run_id=R, tool_call_id="read1", tool_name="Read", input={}, **sub),
        ToolCallSucceeded(run_id=R, tool_call_id="add1", output="5"),
        TextDelta(run_id=R, message_id="m2", block_index=3, delta="Half", **sub),
        StepStarted(run_id=R, message_id="m3"),
        StepFinished(run_id=R, message_id="m2"),  # the subagent's: no finish-step
        TextCompleted(run_id=R, message_id="m3", text="Still working."),
        RunCancelled(run_id=R, reason="cancelled"),
        ToolCallFailed(run_id=R, tool_call_id="read1", error_text="interrupted", interrupted=True),
        ToolCallFailed(run_id=R, tool_call_id="agent1", error_text="interrupted", interrupted=True),
    ]


RUNS = {
    "a subagent, cancelled": a_subagent,
    "text with reasoning deltas": text_with_reasoning_deltas,
    "parallel tools, one failing": parallel_tools_one_failing,
    "a denied tool": a_denied_tool,
    "a model error": a_model_error,
    "a crashed CLI": a_crashed_cli,
    "a cancel with a dangling tool call": a_cancel_with_a_dangling_tool_call,
    "custom data events": custom_data_events,
    "a completion that rewrites the streamed text": a_rewritten_completion,
    "a safety net written after the cancel": a_late_safety_net,
    "a log that stops (the process died)": a_log_that_stops,
    "a run superseded by the next one": superseded_by_the_next_run,
}


def logged(events: list[SessionEvent]) -> list[RecordedEvent]:
    return record("s", [SessionCreated(), RunStarted(run_id=R, prompt="hi"), *events])


@pytest.mark.parametrize("name", RUNS)
def test_the_ai_sdk_builds_the_projections_message(ai_sdk: AiSdk, name: str) -> None:
    events = logged(RUNS[name]())
    result = check_run(ai_sdk, events, R)
    if name == "a model error":
        assert result["error"] == "API Error: 529 Overloaded"
    if name == "a completion that rewrites the streamed text":
        assert {"type": "reset-step"} in run_chunks(events, R)
    if name == "a subagent, cancelled":
        parts = result["messages"][-1]["parts"]
        nested = {
            p.get("toolCallId") or p["text"]: p.get(
                "providerMetadata", p.get("callProviderMetadata")
            )
            for p in parts
            if "providerMetadata" in p or "callProviderMetadata" in p
        }
        under = {"agentlog": {"parentToolCallId": "agent1"}}
        assert nested == {"Adding.": under, "add1": under, "read1": under, "Half": under}
        assert [p["type"] for p in parts].count("step-start") == 2  # a subagent's are not steps
        states = {p["toolCallId"]: p["state"] for p in parts if "toolCallId" in p}
        assert states == {
            "agent1": "output-error",
            "add1": "output-available",
            "read1": "output-error",
        }


def test_a_resumed_stream_replaces_the_partial_message_the_chat_holds(ai_sdk: AiSdk) -> None:
    events = logged(parallel_tools_one_failing())
    partial = to_ui_messages(fold(events[:9]), run_active=True)
    assert partial[-1]["id"] == R and partial[-1]["parts"][-1]["state"] == "input-streaming"
    check_run(ai_sdk, events, R, before=partial)


def test_the_ai_sdk_rejects_what_agentlog_must_never_send(ai_sdk: AiSdk) -> None:
    # The checks above mean something only if the real parser is strict.
    start = {"type": "start", "messageId": R}
    for bad in (
        {"type": "heartbeat"},
        {"type": "text-delta", "id": "x", "delta": "a"},
        {"type": "data-x"},
    ):
        result = ai_sdk.resume([], sse_of([start, bad]))
        assert result["status"] == "error", bad


# -- random logs -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=session_logs())
def test_the_ai_sdk_builds_the_projections_message_for_random_logs(
    ai_sdk: AiSdk, events: list[RecordedEvent]
) -> None:
    for message in to_ui_messages(fold(events), run_active=False):
        if "metadata" in message:
            check_run(ai_sdk, events, message["id"])


def test_the_pinned_ai_version_is_the_one_the_mirror_was_written_from() -> None:
    assert _pinned_version() == "7.0.173"
    lock = json.loads(Path(JS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/ai"]["version"] == _pinned_version()
