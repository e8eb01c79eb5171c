"""The conversation projection: each mapping rule by example, then properties over random logs."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlog.domain.events import (
    AgentErrorReported,
    AgentInitialized,
    AgentStatusReported,
    CustomEventRecorded,
    HeartbeatRecorded,
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    RunAbandoned,
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
    ToolApprovalResponded,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
)
from agentlog.projections.ui_messages import (
    EMPTY,
    INTERRUPTED,
    ConversationState,
    apply,
    fold,
    to_ui_messages,
)
from tests.strategies import record, session_logs

R = "run1"


def ui(*events: SessionEvent, run_active: bool = False) -> list[dict[str, Any]]:
    return to_ui_messages(fold(record("s", [SessionCreated(), *events])), run_active=run_active)


def assistant(*events: SessionEvent, run_active: bool = False) -> dict[str, Any]:
    """The assistant message of run R, after `run_started` and the given events."""
    messages = ui(RunStarted(run_id=R, prompt="hi"), *events, run_active=run_active)
    return next(m for m in messages if m["id"] == R)


def parts(*events: SessionEvent, run_active: bool = False) -> list[dict[str, Any]]:
    return list(assistant(*events, run_active=run_active)["parts"])


def started(tool_call_id: str, name: str = "Bash", **fields: Any) -> ToolCallStarted:
    return ToolCallStarted(run_id=R, tool_call_id=tool_call_id, tool_name=name, **fields)


def roundtrip(state: ConversationState) -> ConversationState:
    return msgspec.json.decode(msgspec.json.encode(state), type=ConversationState)


# -- rules, by example -----------------------------------------------------------------------


def test_session_created_shows_nothing() -> None:
    assert ui() == []


def test_run_started_adds_the_prompt_and_opens_one_assistant_message() -> None:
    user, reply = ui(RunStarted(run_id=R, prompt="hello", agent="claude"), run_active=True)
    assert user == {"id": "run1:user", "role": "user", "parts": [{"type": "text", "text": "hello"}]}
    assert reply["id"] == R
    assert reply["role"] == "assistant"
    assert reply["parts"] == []
    assert reply["metadata"]["status"] == "running"
    assert reply["metadata"]["agent"] == "claude"
    assert "startedAt" in reply["metadata"]


def test_each_run_has_its_own_pair_of_messages() -> None:
    messages = ui(
        RunStarted(run_id="a", prompt="one"),
        RunFinished(run_id="a"),
        RunStarted(run_id="b", prompt="two"),
        RunFinished(run_id="b"),
    )
    assert [m["id"] for m in messages] == ["a:user", "a", "b:user", "b"]


def test_step_started_appends_a_step_start_and_step_finished_shows_nothing() -> None:
    assert parts(
        StepStarted(run_id=R, message_id="m1"),
        StepFinished(run_id=R, message_id="m1"),
        StepStarted(run_id=R, message_id="m2"),
    ) == [{"type": "step-start"}, {"type": "step-start"}]


def test_text_deltas_build_one_streaming_part_per_block() -> None:
    assert parts(
        TextDelta(run_id=R, message_id="m1", block_index=0, delta="Hel"),
        TextDelta(run_id=R, message_id="m1", block_index=1, delta="other"),
        TextDelta(run_id=R, message_id="m1", block_index=0, delta="lo"),
        run_active=True,
    ) == [
        {"type": "text", "text": "Hello", "state": "streaming"},
        {"type": "text", "text": "other", "state": "streaming"},
    ]


def test_text_completed_replaces_what_the_deltas_built() -> None:
    assert parts(
        TextDelta(run_id=R, message_id="m1", block_index=0, delta="Hel"),
        TextCompleted(run_id=R, message_id="m1", block_index=0, text="Hello!"),
        run_active=True,
    ) == [{"type": "text", "text": "Hello!", "state": "done"}]


def test_text_completed_without_deltas_creates_the_part() -> None:
    assert parts(TextCompleted(run_id=R, message_id="m1", text="Hi"), run_active=True) == [
        {"type": "text", "text": "Hi", "state": "done"}
    ]


def test_a_delta_after_the_completion_is_ignored() -> None:
    assert parts(
        TextCompleted(run_id=R, message_id="m1", text="Hi"),
        TextDelta(run_id=R, message_id="m1", block_index=0, delta="late"),
        run_active=True,
    ) == [{"type": "text", "text": "Hi", "state": "done"}]


def test_reasoning_follows_the_same_rules_as_text() -> None:
    assert parts(
        ReasoningDelta(run_id=R, message_id="m1", block_index=0, delta="hmm"),
        run_active=True,
    ) == [{"type": "reasoning", "text": "hmm", "state": "streaming"}]
    assert parts(
        ReasoningDelta(run_id=R, message_id="m1", block_index=0, delta="hmm"),
        ReasoningCompleted(run_id=R, message_id="m1", block_index=0, text="hmm.", signature="s"),
        TextCompleted(run_id=R, message_id="m1", block_index=1, text="ok"),
        run_active=True,
    ) == [
        {"type": "reasoning", "text": "hmm.", "state": "done"},
        {"type": "text", "text": "ok", "state": "done"},
    ]


def test_tool_input_deltas_stream_a_part_without_input() -> None:
    assert parts(
        ToolInputDelta(
            run_id=R,
            message_id="m1",
            block_index=0,
            tool_call_id="t1",
            tool_name="Bash",
            delta='{"command": ',
        ),
        run_active=True,
    ) == [{"type": "tool-Bash", "toolCallId": "t1", "state": "input-streaming"}]


def test_tool_call_started_makes_the_input_available() -> None:
    delta = ToolInputDelta(
        run_id=R, message_id="m1", block_index=0, tool_call_id="t1", tool_name="Bash", delta="{"
    )
    expected = {
        "type": "tool-Bash",
        "toolCallId": "t1",
        "state": "input-available",
        "input": {"command": "ls"},
    }
    assert parts(delta, started("t1", input={"command": "ls"}), run_active=True) == [expected]
    assert parts(started("t1", input={"command": "ls"}), run_active=True) == [expected]


def test_mcp_tools_are_dynamic_tool_parts() -> None:
    (part,) = parts(started("t1", name="mcp__demo__add", input={"a": 2}), run_active=True)
    assert part["type"] == "dynamic-tool"
    assert part["toolName"] == "mcp__demo__add"


def test_a_second_start_for_the_same_call_changes_nothing() -> None:
    assert parts(
        started("t1", input={"a": 1}), started("t1", input={"a": 2}), run_active=True
    ) == parts(started("t1", input={"a": 1}), run_active=True)


def test_parallel_tool_calls_resolve_in_completion_order_and_keep_their_places() -> None:
    before = [started("t1", input=1), started("t2", input=2), started("t3", input=3)]
    assert [
        (p["toolCallId"], p["state"], p.get("output"), p.get("errorText"))
        for p in parts(
            *before,
            ToolCallSucceeded(run_id=R, tool_call_id="t3", output="three"),
            ToolCallFailed(run_id=R, tool_call_id="t1", error_text="no such file"),
            run_active=True,
        )
    ] == [
        ("t1", "output-error", None, "no such file"),
        ("t2", "input-available", None, None),
        ("t3", "output-available", "three", None),
    ]


def test_a_denied_tool_call_carries_the_reason_as_a_refused_approval() -> None:
    (part,) = parts(
        started("t1", input={"command": "rm -rf /"}),
        ToolCallDenied(run_id=R, tool_call_id="t1", reason="blocked by policy"),
    )
    assert part == {
        "type": "tool-Bash",
        "toolCallId": "t1",
        "state": "output-denied",
        "input": {"command": "rm -rf /"},
        "approval": {"id": "t1", "approved": False, "reason": "blocked by policy"},
    }


def test_a_terminal_event_for_an_unknown_call_changes_nothing_visible() -> None:
    assert parts(
        started("t1"), ToolCallSucceeded(run_id=R, tool_call_id="nope"), run_active=True
    ) == parts(started("t1"), run_active=True)


def test_only_the_first_terminal_event_of_a_call_counts() -> None:
    (part,) = parts(
        started("t1"),
        ToolCallSucceeded(run_id=R, tool_call_id="t1", output="ok"),
        ToolCallFailed(run_id=R, tool_call_id="t1", error_text="interrupted"),
    )
    assert (part["state"], part["output"]) == ("output-available", "ok")


def test_a_late_safety_net_result_lands_on_the_ended_run() -> None:
    messages = ui(
        RunStarted(run_id="a", prompt="one"),
        ToolCallStarted(run_id="a", tool_call_id="t1", tool_name="Bash"),
        RunCancelled(run_id="a"),
        RunStarted(run_id="b", prompt="two"),
        ToolCallFailed(run_id="a", tool_call_id="t1", error_text="interrupted", source="net"),
        run_active=True,
    )
    (part,) = messages[1]["parts"]
    assert (part["state"], part["errorText"]) == ("output-error", "interrupted")


def test_an_agent_error_is_a_data_part_where_it_happened() -> None:
    assert parts(
        TextCompleted(run_id=R, message_id="m1", text="Let me"),
        AgentErrorReported(run_id=R, kind="api_error", message="overloaded", status=529),
        run_active=True,
    ) == [
        {"type": "text", "text": "Let me", "state": "done"},
        {
            "type": "data-agent-error",
            "data": {"kind": "api_error", "message": "overloaded", "status": 529},
        },
    ]


def test_custom_events_are_data_parts_on_the_open_run_or_standalone_messages() -> None:
    messages = ui(
        CustomEventRecorded(name="note", data={"a": 1}),
        RunStarted(run_id=R, prompt="hi"),
        CustomEventRecorded(name="progress", data=0.5),
        RunFinished(run_id=R),
        CustomEventRecorded(run_id="unknown", name="late", data=None),
    )
    assert messages[0] == {
        "id": "custom:2",
        "role": "assistant",
        "parts": [{"type": "data-note", "data": {"a": 1}}],
    }
    assert messages[2]["parts"] == [{"type": "data-progress", "data": 0.5}]
    assert messages[3] == {
        "id": "custom:6",
        "role": "assistant",
        "parts": [{"type": "data-late", "data": None}],
    }


def test_custom_events_naming_an_ended_run_join_its_message() -> None:
    messages = ui(
        RunStarted(run_id=R, prompt="hi"),
        RunFinished(run_id=R),
        CustomEventRecorded(run_id=R, name="rating", data=5),
    )
    assert messages[1]["parts"] == [{"type": "data-rating", "data": 5}]


def test_heartbeats_status_and_initialisation_show_nothing_but_the_model() -> None:
    reply = assistant(
        AgentInitialized(run_id=R, model="claude-sonnet-4-5"),
        AgentStatusReported(run_id=R, subtype="status"),
        HeartbeatRecorded(run_id=R),
        run_active=True,
    )
    assert reply["parts"] == []
    assert reply["metadata"]["model"] == "claude-sonnet-4-5"


def test_run_finished_records_status_usage_and_cost() -> None:
    metadata = ui(
        RunStarted(run_id=R, prompt="hi", agent="claude"),
        RunFinished(
            run_id=R,
            result="done",
            stop_reason="end_turn",
            num_turns=2,
            duration_ms=1200,
            total_cost_usd=0.01,
            usage={"input_tokens": 10},
        ),
    )[1]["metadata"]
    assert metadata["status"] == "finished"
    assert metadata["usage"] == {"input_tokens": 10}
    assert metadata["totalCostUsd"] == 0.01
    assert metadata["cost"] == {
        "inputTokens": 10,
        "outputTokens": 0,
        "cacheReadInputTokens": 0,
        "cacheCreationInputTokens": 0,
        "costUsd": 0.01,
        "scripted": False,
    }
    assert metadata["durationMs"] == 1200
    assert metadata["numTurns"] == 2
    assert metadata["stopReason"] == "end_turn"
    assert "endedAt" in metadata
    assert "error" not in metadata


def test_a_run_counts_every_models_tokens_and_the_scripted_model_costs_nothing() -> None:
    subagent_too = {
        "claude-opus-4-1": {"inputTokens": 100, "outputTokens": 20, "costUSD": 0.5},
        "claude-haiku-4-5": {"inputTokens": 7, "cacheReadInputTokens": 3, "costUSD": 0.25},
    }
    finished = RunFinished(
        run_id=R, total_cost_usd=0.75, usage={"input_tokens": 100}, model_usage=subagent_too
    )
    real = ui(RunStarted(run_id=R, prompt="hi", agent="claude"), finished)[1]["metadata"]
    assert real["cost"] == {
        "inputTokens": 107,
        "outputTokens": 20,
        "cacheReadInputTokens": 3,
        "cacheCreationInputTokens": 0,
        "costUsd": 0.75,
        "scripted": False,
    }
    # A log recorded before the scripted model reported zero still shows no made-up price.
    scripted = assistant(finished)["metadata"]
    assert (scripted["totalCostUsd"], scripted["cost"]["costUsd"]) == (0.0, 0.0)
    assert scripted["cost"]["scripted"] is True
    assert scripted["cost"]["inputTokens"] == 107
    cancelled = assistant(RunCancelled(run_id=R, usage={"output_tokens": 4}))["metadata"]
    assert cancelled["cost"]["outputTokens"] == 4


def test_an_error_result_is_a_failed_run() -> None:
    metadata = assistant(RunFinished(run_id=R, result="API Error", is_error=True))["metadata"]
    assert (metadata["status"], metadata["error"]) == ("failed", "API Error")


def test_failed_cancelled_and_abandoned_runs_say_why() -> None:
    failed = assistant(RunFailed(run_id=R, error="CLI crashed", terminal_reason="api_error"))
    assert (failed["metadata"]["status"], failed["metadata"]["error"]) == ("failed", "CLI crashed")
    cancelled = assistant(RunCancelled(run_id=R, reason="shutdown"))["metadata"]
    assert (cancelled["status"], cancelled["error"]) == ("cancelled", "shutdown")
    abandoned = assistant(RunAbandoned(run_id=R))["metadata"]
    assert (abandoned["status"], abandoned["error"]) == ("abandoned", "owner lost")


def test_only_the_first_terminal_run_event_counts() -> None:
    metadata = assistant(RunFinished(run_id=R), RunAbandoned(run_id=R))["metadata"]
    assert metadata["status"] == "finished"


def test_events_without_a_run_id_belong_to_the_open_run() -> None:
    assert parts(
        StepStarted(message_id="m1"),
        TextCompleted(message_id="m1", text="x"),
        run_active=True,
    ) == [{"type": "step-start"}, {"type": "text", "text": "x", "state": "done"}]


def test_run_events_outside_any_run_change_nothing_visible() -> None:
    assert ui(TextCompleted(message_id="m1", text="x"), started("t1")) == []


def test_a_run_started_over_an_open_run_abandons_it() -> None:
    messages = ui(
        RunStarted(run_id="a", prompt="one"),
        ToolCallStarted(run_id="a", tool_call_id="t1", tool_name="Bash"),
        RunStarted(run_id="b", prompt="two"),
        run_active=True,
    )
    old = messages[1]
    assert old["metadata"]["status"] == "abandoned"
    assert old["parts"][0]["state"] == "output-error"
    assert messages[3]["metadata"]["status"] == "running"


# -- hydration -------------------------------------------------------------------------------

CANCELLED_WITH_DANGLING_CALLS = (
    StepStarted(run_id=R, message_id="m1"),
    TextDelta(run_id=R, message_id="m1", block_index=0, delta="Work"),
    ToolInputDelta(
        run_id=R, message_id="m1", block_index=1, tool_call_id="t1", tool_name="Read", delta="{"
    ),
    started("t2", input={"command": "sleep 100"}),
    started("t3", input={}),
    ToolCallSucceeded(run_id=R, tool_call_id="t3", output="ok"),
)


def test_while_the_run_is_active_waiting_parts_stay_as_they_are() -> None:
    shown = parts(*CANCELLED_WITH_DANGLING_CALLS, run_active=True)
    assert [(p["type"], p.get("state")) for p in shown] == [
        ("step-start", None),
        ("text", "streaming"),
        ("tool-Read", "input-streaming"),
        ("tool-Bash", "input-available"),
        ("tool-Bash", "output-available"),
    ]


def test_with_no_active_run_waiting_parts_read_as_interrupted() -> None:
    for events in (
        CANCELLED_WITH_DANGLING_CALLS,
        (*CANCELLED_WITH_DANGLING_CALLS, RunCancelled(run_id=R)),
    ):
        shown = parts(*events, run_active=False)
        assert shown[1] == {"type": "text", "text": "Work", "state": "done"}
        assert shown[2] == {
            "type": "tool-Read",
            "toolCallId": "t1",
            "state": "output-error",
            "errorText": INTERRUPTED,
        }
        assert shown[3] == {
            "type": "tool-Bash",
            "toolCallId": "t2",
            "state": "output-error",
            "input": {"command": "sleep 100"},
            "errorText": INTERRUPTED,
        }
        assert shown[4]["state"] == "output-available"


def test_once_the_run_has_ended_its_waiting_parts_read_as_interrupted_even_if_active() -> None:
    shown = parts(*CANCELLED_WITH_DANGLING_CALLS, RunCancelled(run_id=R), run_active=True)
    assert [p.get("state") for p in shown] == [
        None,
        "done",
        "output-error",
        "output-error",
        "output-available",
    ]


def test_hydration_is_a_read_the_state_keeps_its_waiting_parts() -> None:
    state = fold(record("s", [RunStarted(run_id=R, prompt="x"), *CANCELLED_WITH_DANGLING_CALLS]))
    before = msgspec.json.encode(state)
    to_ui_messages(state, run_active=False)
    assert msgspec.json.encode(state) == before
    assert [p["state"] for p in to_ui_messages(state, run_active=True)[1]["parts"][2:]] == [
        "input-streaming",
        "input-available",
        "output-available",
    ]


# -- the fold's contract ---------------------------------------------------------------------


def test_reapplying_an_event_changes_nothing() -> None:
    events = record("s", [SessionCreated(), RunStarted(run_id=R, prompt="x"), started("t1")])
    state = fold(events)
    for recorded in events:
        assert apply(state, recorded) is state
    assert fold(events, state) is state


def test_an_answer_to_a_call_still_streaming_its_input_changes_nothing_in_one_fold() -> None:
    # No approval was asked for the call, so the answer has nothing to move: a fold over the
    # batch must agree with applying the events one by one (it used to fail an assertion on
    # the part whose input was still being joined).
    events = record(
        "s",
        [
            SessionCreated(),
            RunStarted(run_id=R, prompt="x"),
            ToolInputDelta(
                run_id=R,
                message_id="m",
                block_index=0,
                tool_call_id="t1",
                tool_name="Bash",
                delta='{"command"',
            ),
            ToolApprovalResponded(run_id=R, approval_id="a1", tool_call_id="t1", approved=True),
        ],
    )
    state = EMPTY
    for recorded in events:
        state = apply(state, recorded)
    assert fold(events) == state
    assert to_ui_messages(state, run_active=True)[-1]["parts"] == [
        {"type": "tool-Bash", "toolCallId": "t1", "state": "input-streaming"}
    ]


def test_apply_never_mutates_the_state_it_was_given() -> None:
    events = record(
        "s",
        [
            SessionCreated(),
            RunStarted(run_id=R, prompt="x"),
            TextDelta(run_id=R, message_id="m", block_index=0, delta="a"),
            TextDelta(run_id=R, message_id="m", block_index=0, delta="b"),
            started("t1"),
            ToolCallSucceeded(run_id=R, tool_call_id="t1"),
        ],
    )
    state = EMPTY
    for recorded in events:
        before = msgspec.json.encode(state)
        after = apply(state, recorded)
        assert msgspec.json.encode(state) == before
        assert after != state
        state = after
    assert state == fold(events)


def test_the_state_survives_a_json_round_trip() -> None:
    state = fold(record("s", [RunStarted(run_id=R, prompt="x"), *CANCELLED_WITH_DANGLING_CALLS]))
    assert roundtrip(state) == state


# -- properties over random valid logs -------------------------------------------------------


def _fold_in_chunks(events: list[RecordedEvent], cuts: list[int]) -> ConversationState:
    state = EMPTY
    bounds = [0, *sorted(cuts), len(events)]
    for start, end in itertools.pairwise(bounds):
        state = roundtrip(fold(events[start:end], state))
    return state


@settings(max_examples=200, deadline=None)
@given(session_logs(), st.lists(st.integers(0, 200), max_size=6), st.data())
def test_chunked_replayed_and_one_by_one_folds_agree(
    events: list[RecordedEvent], cuts: list[int], data: st.DataObject
) -> None:
    whole = fold(events)
    assert whole.last_seq == len(events)
    assert _fold_in_chunks(events, [min(c, len(events)) for c in cuts]) == whole

    replayed: list[RecordedEvent] = []
    for i, recorded in enumerate(events):
        replayed.append(recorded)
        replayed += data.draw(st.lists(st.sampled_from(events[: i + 1]), max_size=2))
    assert fold(replayed) == whole

    state = EMPTY
    seen: list[tuple[ConversationState, bytes]] = []
    for recorded in replayed:
        state = apply(state, recorded)
        seen.append((state, msgspec.json.encode(state)))
    assert state == whole
    # No later apply changed a state handed out earlier.
    assert all(msgspec.json.encode(s) == encoded for s, encoded in seen)


@settings(max_examples=200, deadline=None)
@given(session_logs())
def test_every_started_tool_call_is_shown_exactly_once(events: list[RecordedEvent]) -> None:
    state = fold(events)
    started_ids = [e.event.tool_call_id for e in events if isinstance(e.event, ToolCallStarted)]
    streamed_ids = {e.event.tool_call_id for e in events if isinstance(e.event, ToolInputDelta)}
    for run_active in (False, True):
        shown = [
            p["toolCallId"]
            for m in to_ui_messages(state, run_active=run_active)
            for p in m["parts"]
            if "toolCallId" in p
        ]
        assert len(shown) == len(set(shown))
        assert set(started_ids) <= set(shown)
        assert set(shown) <= set(started_ids) | streamed_ids


@settings(max_examples=200, deadline=None)
@given(session_logs())
def test_hydrated_messages_have_nothing_left_waiting(events: list[RecordedEvent]) -> None:
    state = fold(events)
    before = msgspec.json.encode(state)
    for message in to_ui_messages(state, run_active=False):
        for part in message["parts"]:
            assert part.get("state") not in ("input-streaming", "input-available", "streaming")
    assert msgspec.json.encode(state) == before
