"""SdkTranslator over the real SDK replaying recorded CLI sessions, and on hand-made messages."""

from __future__ import annotations

import json
from typing import Any, cast

import anyio
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    PermissionResultAllow,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    create_sdk_mcp_server,
    tool,
)

from agentlog.domain.events import (
    TOOL_TERMINAL_TYPES,
    AgentErrorReported,
    AgentInitialized,
    AgentStatusReported,
    Event,
    ReasoningCompleted,
    ReasoningDelta,
    RunFinished,
    StepFinished,
    StepStarted,
    TextCompleted,
    TextDelta,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
    decode_event,
    encode_event,
    type_of,
)
from agentlog.infra.agent.sdk.translate import SdkTranslator, denial_reason, tool_output, tool_text

from .cli_recordings import fixture_names, fixture_path, replay

# -- the exact event sequence of every recording ---------------------------------------------

START = ["agent_initialized", "agent_status"]  # system/init, then system/status "requesting"
ONE_TEXT_STEP = ["step_started", "text_delta", "text_completed", "step_finished"]
TEXT_THEN_TOOL_STEP = [
    "step_started",
    "text_delta",
    "text_completed",
    "tool_input_delta",
    "tool_call_started",
    "step_finished",
]
ABANDONED_STEP = ["step_started", *["text_delta"] * 4, "step_finished"]

# fixture -> one sequence per turn (per recorded prompt).
EXPECTED: dict[str, list[list[str]]] = {
    "text-streaming.jsonl": [
        [
            *START,
            "step_started",
            *["reasoning_delta"] * 3,
            "reasoning_completed",
            *["text_delta"] * 10,
            "text_completed",
            "step_finished",
            "run_finished",
        ]
    ],
    "parallel-tools-with-error.jsonl": [
        [
            *START,
            "step_started",
            "text_delta",
            "text_completed",
            "tool_input_delta",
            "tool_call_started",
            "tool_input_delta",
            "tool_call_started",
            "step_finished",
            "tool_call_succeeded",
            "tool_call_failed",
            "agent_status",
            *ONE_TEXT_STEP,
            "run_finished",
        ]
    ],
    "denied-tool.jsonl": [
        [
            *START,
            *TEXT_THEN_TOOL_STEP,
            "tool_call_denied",
            "agent_status",
            *ONE_TEXT_STEP,
            "run_finished",
        ]
    ],
    "model-error.jsonl": [[*START, *ABANDONED_STEP, "agent_error", "run_finished"]],
    "model-error-midstream-nofallback.jsonl": [
        [
            *START,
            "step_started",
            *["text_delta"] * 4,
            "agent_error",
            "step_finished",
            "run_finished",
        ]
    ],
    "model-error-midstream-recovered.jsonl": [
        [*START, *ABANDONED_STEP, "step_started", "text_completed", "step_finished", "run_finished"]
    ],
    "model-error-http500.jsonl": [[*START, "agent_status", "agent_error", "run_finished"]],
    "cancel.jsonl": [
        [*START, *TEXT_THEN_TOOL_STEP, "tool_call_failed", "run_finished"],
        [*START, *ONE_TEXT_STEP, "run_finished"],
    ],
    "cancel-bash.jsonl": [
        [*START, *TEXT_THEN_TOOL_STEP, "tool_call_failed", "run_finished"],
        [*START, *ONE_TEXT_STEP, "run_finished"],
    ],
    "long-tool.jsonl": [
        [
            *START,
            *TEXT_THEN_TOOL_STEP,
            "tool_call_succeeded",
            "agent_status",
            *ONE_TEXT_STEP,
            "run_finished",
        ]
    ],
    # The two tool_progress heartbeats are dropped by the SDK's parser.
    "long-tool-heartbeat.jsonl": [
        [
            *START,
            *TEXT_THEN_TOOL_STEP,
            "tool_call_succeeded",
            "agent_status",
            *ONE_TEXT_STEP,
            "run_finished",
        ]
    ],
    # system/task_started and system/task_notification while Bash runs.
    "long-tool-bash.jsonl": [
        [
            *START,
            *TEXT_THEN_TOOL_STEP,
            "agent_status",
            "agent_status",
            "tool_call_succeeded",
            "agent_status",
            *ONE_TEXT_STEP,
            "run_finished",
        ]
    ],
    "multi-turn-turn1.jsonl": [[*START, *ONE_TEXT_STEP, "run_finished"]],
    "multi-turn-resume.jsonl": [[*START, *ONE_TEXT_STEP, "run_finished"]],
    "multi-turn-resume-fresh-home.jsonl": [[*START, *ONE_TEXT_STEP, "run_finished"]],
}
# Replayed separately: the CLI never answers `initialize`, so connect() raises before any
# message reaches the translator (test_replay_transport.py checks the ResultError it raises).
NOT_TRANSLATED = {"multi-turn-resume-missing.jsonl"}
INTERRUPTED = {"cancel.jsonl", "cancel-bash.jsonl"}


def test_every_recording_has_an_expected_sequence() -> None:
    names = fixture_names()
    if not names:
        fixture_path("text-streaming.jsonl")  # fails under CI=true, skips elsewhere
    assert set(names) == set(EXPECTED) | NOT_TRANSLATED, (
        "a recording was added or removed: give it an expected sequence here"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recording_translates_to_the_expected_sequence(name: str) -> None:
    replayed = await replay(name, interrupt_on_tool_call=name in INTERRUPTED)

    assert [replayed.types(turn) for turn in range(len(replayed.turns))] == EXPECTED[name]
    for turn, events in enumerate(replayed.turns, start=1):
        assert_consistent_log(events, run_id=f"run-{turn}")


def assert_consistent_log(events: list[Event], *, run_id: str) -> None:
    """Invariants every run's events keep, whatever the recording."""
    assert all(event.run_id == run_id for event in events)
    for event in events:
        assert decode_event(encode_event(event)) == event
    assert type_of(events[-1]) == "run_finished"

    open_steps: set[str] = set()
    started_tools: set[str] = set()
    ended_tools: set[str] = set()
    for event in events:
        if isinstance(event, StepStarted):
            assert event.message_id not in open_steps
            open_steps.add(event.message_id)
        elif isinstance(event, StepFinished):
            open_steps.remove(event.message_id)
        elif isinstance(event, (TextDelta, ReasoningDelta, ToolInputDelta)):
            assert event.message_id in open_steps, "a delta outside its step"
        elif isinstance(event, ToolCallStarted):
            started_tools.add(event.tool_call_id)
        elif isinstance(event, TOOL_TERMINAL_TYPES):
            assert event.tool_call_id in started_tools, "a tool call ended before it started"
            assert event.tool_call_id not in ended_tools, "a tool call ended twice"
            ended_tools.add(event.tool_call_id)
    assert not open_steps, "a step never finished"
    assert started_tools == ended_tools, "a tool call never ended"


def only(events: list[Event], cls: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, cls)]


# -- key fields, per recording ----------------------------------------------------------------


async def test_text_streaming_keeps_thinking_with_its_signature_and_the_final_text() -> None:
    events = (await replay("text-streaming.jsonl")).turns[0]

    init = only(events, AgentInitialized)[0]
    assert (init.model, init.cwd) == ("claude-sonnet-4-5", "/workspace")
    assert init.agent_session_id == "ebebfb89-6b81-4d6d-9777-81ff2be5a421"
    assert "Bash" in init.tools
    assert [s.data["status"] for s in only(events, AgentStatusReported)] == ["requesting"]

    (step,) = only(events, StepStarted)
    assert (step.message_id, step.model) == ("msg_mock_text_001", "claude-sonnet-4-5")

    (reasoning,) = only(events, ReasoningCompleted)
    assert reasoning.block_index == 0
    assert reasoning.text.startswith("The user asks why the sky is blue.")
    assert reasoning.signature.startswith("EqQBCkgIARABGAIiQFakeSignature")
    assert "".join(d.delta for d in only(events, ReasoningDelta)) == reasoning.text

    (text,) = only(events, TextCompleted)
    assert text.block_index == 1
    assert text.text.startswith("The sky looks blue because air molecules scatter sunlight")
    deltas = only(events, TextDelta)
    assert {d.block_index for d in deltas} == {1}
    assert "".join(d.delta for d in deltas) == text.text

    (finished,) = only(events, StepFinished)
    assert finished.stop_reason == "end_turn"
    assert finished.usage["input_tokens"] == 100 and finished.usage["output_tokens"] == 20

    (run,) = only(events, RunFinished)
    assert run.result == text.text
    assert (run.is_error, run.stop_reason, run.num_turns) == (False, "end_turn", 1)
    assert run.agent_session_id == init.agent_session_id
    assert run.total_cost_usd == pytest.approx(0.0006)
    assert run.duration_api_ms == 440


async def test_parallel_tools_end_in_completion_order_with_the_failure_on_the_read() -> None:
    replayed = await replay("parallel-tools-with-error.jsonl")
    events = replayed.turns[0]

    started = only(events, ToolCallStarted)
    assert [(s.tool_call_id, s.tool_name) for s in started] == [
        ("toolu_01ADD", "mcp__demo__add"),
        ("toolu_02READ", "Read"),
    ]
    assert started[0].input == {"a": 2, "b": 3}
    assert started[1].input == {"file_path": "/definitely/missing.txt"}
    assert {s.message_id for s in started} == {"msg_mock_001"}
    assert all(s.parent_tool_call_id is None for s in started)
    for call in started:
        pieces = [
            d.delta for d in only(events, ToolInputDelta) if d.tool_call_id == call.tool_call_id
        ]
        assert json.loads("".join(pieces)) == call.input

    terminal = [e for e in events if isinstance(e, TOOL_TERMINAL_TYPES)]
    assert [type_of(e) for e in terminal] == ["tool_call_succeeded", "tool_call_failed"]
    succeeded, failed = terminal
    assert isinstance(succeeded, ToolCallSucceeded) and isinstance(failed, ToolCallFailed)
    assert (succeeded.tool_call_id, succeeded.output) == ("toolu_01ADD", "5")
    assert failed.tool_call_id == "toolu_02READ"
    assert failed.error_text.startswith("File does not exist.")

    assert (
        only(events, TextCompleted)[-1].text
        == "2 + 3 = 5, and /definitely/missing.txt does not exist."
    )
    assert (
        only(events, RunFinished)[0].result
        == "2 + 3 = 5, and /definitely/missing.txt does not exist."
    )
    assert replayed.translators[0].pending_tool_calls() == []


async def test_a_policy_denial_is_a_denied_call_with_the_policy_reason() -> None:
    replayed = await replay("denied-tool.jsonl")
    events = replayed.turns[0]

    (call,) = only(events, ToolCallStarted)
    assert (call.tool_call_id, call.tool_name) == ("toolu_01BASHDENY", "Bash")
    (denied,) = only(events, ToolCallDenied)
    assert denied.tool_call_id == "toolu_01BASHDENY"
    assert denied.reason == "Bash is disabled by policy in this session."
    assert not only(events, ToolCallFailed)

    (run,) = only(events, RunFinished)
    assert run.is_error is False
    outcome = replayed.translators[0].outcome
    assert outcome is not None and not outcome.is_error
    assert [d["tool_use_id"] for d in outcome.permission_denials] == ["toolu_01BASHDENY"]


async def test_a_model_error_is_an_agent_error_and_an_error_result() -> None:
    replayed = await replay("model-error.jsonl")
    events = replayed.turns[0]

    (error,) = only(events, AgentErrorReported)
    assert (error.kind, error.status) == ("server_error", 529)
    assert error.message.startswith("API Error: 529 Overloaded.")
    # The abandoned stream closed without a stop reason and without a completed block.
    (step,) = only(events, StepFinished)
    assert (step.message_id, step.stop_reason) == ("msg_mock_overload_001", None)
    assert not only(events, TextCompleted)

    (run,) = only(events, RunFinished)
    assert run.is_error is True
    assert run.result is not None and run.result.startswith("API Error: 529")
    outcome = replayed.translators[0].outcome
    assert outcome is not None
    assert (outcome.terminal_reason, outcome.api_error_status) == ("api_error", 529)
    assert outcome.error_text.startswith("API Error: 529 Overloaded.")
    assert not outcome.cancelled


async def test_an_http_500_without_a_status_in_the_text_still_reports_the_retry() -> None:
    events = (await replay("model-error-http500.jsonl")).turns[0]

    retry = only(events, AgentStatusReported)[1]
    assert retry.subtype == "api_retry"
    assert (retry.data["attempt"], retry.data["error_status"]) == (1, 500)
    (error,) = only(events, AgentErrorReported)
    assert (error.kind, error.status) == ("server_error", 500)


async def test_the_interrupted_tool_call_fails_and_the_session_answers_the_next_turn() -> None:
    replayed = await replay("cancel.jsonl", interrupt_on_tool_call=True)
    first, second = replayed.turns

    (call,) = only(first, ToolCallStarted)
    assert (call.tool_call_id, call.tool_name) == ("toolu_01SLOWOP", "mcp__demo__slow_op")
    (failed,) = only(first, ToolCallFailed)
    assert failed.tool_call_id == "toolu_01SLOWOP"
    assert "this call was stopped while running" in failed.error_text

    (run,) = only(first, RunFinished)
    assert (run.is_error, run.result, run.stop_reason) == (True, None, "tool_use")
    outcome = replayed.translators[0].outcome
    assert outcome is not None and outcome.cancelled
    assert outcome.terminal_reason == "aborted_tools"
    assert outcome.error_text.startswith("[ede_diagnostic]")

    assert (
        only(second, TextCompleted)[0].text
        == "Yes. The slow operation was interrupted before it finished."
    )
    assert only(second, RunFinished)[0].is_error is False
    interrupts = [
        w for w in replayed.transport.written if w.get("request", {}).get("subtype") == "interrupt"
    ]
    assert len(interrupts) == 1


# -- the SDK's callback layers really run over a replay ---------------------------------------


async def test_hooks_permission_callback_and_mcp_tool_run_and_dedupe_through_the_translator() -> (
    None
):
    translator = SdkTranslator("run-1")
    hook_events: list[Event] = []
    hook_calls: list[tuple[str, str]] = []
    added: list[dict[str, Any]] = []
    permission_asked: list[str] = []

    async def pre_tool_use(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        hook_calls.append(("PreToolUse", str(tool_use_id)))
        return {}

    async def post_tool_use(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        hook_calls.append(("PostToolUse", str(tool_use_id)))
        if tool_use_id and translator.mark_resolved(tool_use_id):
            output = tool_output(cast(dict[str, Any], data)["tool_response"])
            hook_events.append(
                ToolCallSucceeded(
                    run_id="run-1", tool_call_id=tool_use_id, output=output, source="hook"
                )
            )
        return {}

    async def post_tool_use_failure(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        hook_calls.append(("PostToolUseFailure", str(tool_use_id)))
        if tool_use_id and translator.mark_resolved(tool_use_id):
            hook_events.append(
                ToolCallFailed(
                    run_id="run-1",
                    tool_call_id=tool_use_id,
                    error_text=cast(dict[str, Any], data)["error"],
                    source="hook",
                )
            )
        return {}

    async def can_use_tool(
        name: str, tool_input: dict[str, Any], context: Any
    ) -> PermissionResultAllow:
        permission_asked.append(name)
        return PermissionResultAllow()

    @tool("add", "Add two numbers", {"a": float, "b": float})
    async def add(args: dict[str, Any]) -> dict[str, Any]:
        added.append(args)
        return {"content": [{"type": "text", "text": str(args["a"] + args["b"])}]}

    options = ClaudeAgentOptions(
        # Registered in the recording's order, so the callback ids hook_0..hook_2 match.
        hooks={
            "PreToolUse": [HookMatcher(hooks=[pre_tool_use])],
            "PostToolUse": [HookMatcher(hooks=[post_tool_use])],
            "PostToolUseFailure": [HookMatcher(hooks=[post_tool_use_failure])],
        },
        can_use_tool=can_use_tool,
        mcp_servers={"demo": create_sdk_mcp_server("demo", tools=[add])},
    )
    replayed = await replay(
        "parallel-tools-with-error.jsonl", options, translator_for_turn=lambda _: translator
    )

    assert hook_calls == [
        ("PreToolUse", "toolu_01ADD"),
        ("PostToolUse", "toolu_01ADD"),
        ("PreToolUse", "toolu_02READ"),
        ("PostToolUseFailure", "toolu_02READ"),
    ]
    assert added == [{"a": 2, "b": 3}]
    assert permission_asked == ["Read"]
    # The hooks claimed both calls first, so the transcript path recorded neither again.
    assert [(type_of(e), e.tool_call_id) for e in hook_events] == [  # type: ignore[attr-defined]
        ("tool_call_succeeded", "toolu_01ADD"),
        ("tool_call_failed", "toolu_02READ"),
    ]
    assert hook_events[0].output == "5"  # type: ignore[attr-defined]
    assert not [e for e in replayed.turns[0] if isinstance(e, TOOL_TERMINAL_TYPES)]
    assert translator.pending_tool_calls() == []


async def test_an_interrupt_cancels_the_running_in_process_tool() -> None:
    cancelled = anyio.Event()

    @tool("slow_op", "A slow operation", {"seconds": float})
    async def slow_op(args: dict[str, Any]) -> dict[str, Any]:
        try:
            await anyio.sleep(args["seconds"])
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return {"content": [{"type": "text", "text": "done"}]}

    options = ClaudeAgentOptions(
        mcp_servers={"demo": create_sdk_mcp_server("demo", tools=[slow_op])}
    )
    with anyio.fail_after(6):  # well under the tool's 8 s: the interrupt must cut it short
        replayed = await replay("cancel.jsonl", options, interrupt_on_tool_call=True)

    assert cancelled.is_set()
    answers = [
        w["response"]["response"]["mcp_response"]
        for w in replayed.transport.written
        if w.get("type") == "control_response"
        and w["response"].get("request_id") == "a8636fa9-3f4c-4ce4-af28-bf138a1995f4"
    ]
    assert [a["error"]["code"] for a in answers] == [-32800]
    assert [type_of(e) for e in replayed.turns[0]] == EXPECTED["cancel.jsonl"][0]


# -- translator unit behaviour (hand-made SDK messages) --------------------------------------


def assistant(message_id: str | None, *blocks: Any, parent: str | None = None) -> AssistantMessage:
    return AssistantMessage(
        content=list(blocks),
        model="claude-sonnet-4-5",
        message_id=message_id,
        parent_tool_use_id=parent,
    )


def result(**overrides: Any) -> ResultMessage:
    fields: dict[str, Any] = {
        "subtype": "success",
        "duration_ms": 10,
        "duration_api_ms": 5,
        "is_error": False,
        "num_turns": 1,
        "session_id": "s-1",
    }
    return ResultMessage(**(fields | overrides))


def test_without_partial_messages_a_step_ends_when_the_next_message_starts() -> None:
    translator = SdkTranslator("r")
    events: list[Event] = []
    events += translator.translate(assistant("m1", TextBlock("a")))
    events += translator.translate(assistant("m1", ToolUseBlock("t1", "Read", {"p": 1})))
    events += translator.translate(
        UserMessage([ToolResultBlock("t1", [{"type": "text", "text": "x"}])])
    )
    events += translator.translate(assistant("m2", TextBlock("b")))
    events += translator.translate(result(result="b"))

    assert [type_of(e) for e in events] == [
        "step_started",
        "text_completed",
        "tool_call_started",
        "tool_call_succeeded",
        "step_finished",
        "step_started",
        "text_completed",
        "step_finished",
        "run_finished",
    ]
    assert [e.block_index for e in only(events, TextCompleted)] == [0, 0]
    assert [e.message_id for e in only(events, StepFinished)] == ["m1", "m2"]


def test_finish_closes_the_open_step_once() -> None:
    translator = SdkTranslator("r")
    translator.translate(assistant("m1", TextBlock("a")))

    assert [(type_of(e), e.message_id) for e in translator.finish()] == [("step_finished", "m1")]  # type: ignore[attr-defined]
    assert translator.finish() == []
    # A late frame of the finished step adds its block without reopening the step.
    assert [type_of(e) for e in translator.translate(assistant("m1", TextBlock("b")))] == [
        "text_completed"
    ]


def test_sub_agent_steps_do_not_close_the_parent_step() -> None:
    translator = SdkTranslator("r")
    events: list[Event] = []
    events += translator.translate(assistant("m1", ToolUseBlock("agent-1", "Agent", {})))
    events += translator.translate(assistant("sub-1", TextBlock("working"), parent="agent-1"))
    events += translator.translate(
        assistant("sub-1", ToolUseBlock("t2", "Read", {}), parent="agent-1")
    )

    assert [type_of(e) for e in events] == [
        "step_started",
        "tool_call_started",
        "step_started",
        "text_completed",
        "tool_call_started",
    ]
    assert only(events, TextCompleted)[0].parent_tool_call_id == "agent-1"
    assert only(events, ToolCallStarted)[1].parent_tool_call_id == "agent-1"
    assert sorted(e.message_id for e in translator.finish()) == ["m1", "sub-1"]  # type: ignore[attr-defined]


def test_each_tool_call_ends_once_whoever_reports_it() -> None:
    translator = SdkTranslator("r")
    translator.translate(
        assistant("m1", ToolUseBlock("t1", "Bash", {}), ToolUseBlock("t2", "Read", {}))
    )
    assert translator.pending_tool_calls() == ["t1", "t2"]

    assert translator.mark_resolved("t1") is True  # e.g. a PostToolUse hook got there first
    assert translator.mark_resolved("t1") is False
    assert translator.translate(UserMessage([ToolResultBlock("t1", "out")])) == []
    assert translator.pending_tool_calls() == ["t2"]

    first = translator.translate(UserMessage([ToolResultBlock("t2", "boom", is_error=True)]))
    again = translator.translate(UserMessage([ToolResultBlock("t2", "boom", is_error=True)]))
    assert [type_of(e) for e in first] == ["tool_call_failed"]
    assert again == []
    assert translator.pending_tool_calls() == []


def test_a_repeated_tool_use_block_starts_the_call_once() -> None:
    translator = SdkTranslator("r")
    events = translator.translate(assistant("m1", ToolUseBlock("t1", "Bash", {})))
    events += translator.translate(assistant("m1", ToolUseBlock("t1", "Bash", {})))
    assert len(only(events, ToolCallStarted)) == 1


def test_high_frequency_thinking_token_frames_are_dropped_other_system_frames_kept() -> None:
    translator = SdkTranslator("r")
    assert translator.translate(SystemMessage("thinking_tokens", {"estimated_tokens": 12})) == []
    (status,) = translator.translate(SystemMessage("compact_boundary", {"trigger": "auto"}))
    assert isinstance(status, AgentStatusReported)
    assert (status.subtype, status.data, status.run_id) == (
        "compact_boundary",
        {"trigger": "auto"},
        "r",
    )


def test_unknown_messages_and_plain_user_text_give_no_events() -> None:
    translator = SdkTranslator("r")
    assert translator.translate(object()) == []
    assert translator.translate(UserMessage("[Request interrupted by user for tool use]")) == []


def test_stream_events_for_an_unknown_block_or_without_a_message_are_ignored() -> None:
    translator = SdkTranslator("r")
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "x"},
    }
    assert translator.translate(StreamEvent("u1", "s", delta)) == []  # no message_start yet
    start = {
        "type": "message_start",
        "message": {"id": "m1", "model": "x", "usage": {"input_tokens": 3}},
    }
    assert [type_of(e) for e in translator.translate(StreamEvent("u2", "s", start))] == [
        "step_started"
    ]
    json_delta = {
        "type": "content_block_delta",
        "index": 5,
        "delta": {"type": "input_json_delta", "partial_json": "{"},
    }
    assert translator.translate(StreamEvent("u3", "s", json_delta)) == []


@pytest.mark.parametrize(
    ("content", "output", "text"),
    [
        ("plain", "plain", "plain"),
        (None, None, ""),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "a\nb", "a\nb"),
        (
            [{"type": "text", "text": "see"}, {"type": "image", "source": {"data": "AA=="}}],
            [{"type": "text", "text": "see"}, {"type": "image", "source": {"data": "AA=="}}],
            'see\n{"type":"image","source":{"data":"AA=="}}',
        ),
    ],
)
def test_tool_result_content_is_normalised_for_display(
    content: Any, output: Any, text: str
) -> None:
    assert tool_output(content) == output
    assert tool_text(content) == text


def test_only_the_pre_tool_use_hook_text_is_a_denial() -> None:
    assert denial_reason("PreToolUse:Bash hook error: no shells") == "no shells"
    assert denial_reason("Error: PreToolUse:mcp__demo__add hook error: a\nb") == "a\nb"
    assert denial_reason("File does not exist.") is None
    assert denial_reason("PostToolUse:Bash hook error: x") is None
