"""Every reporter of a tool call's end goes through one translator method, and a run's events
reach the log in the order they were recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from claude_agent_sdk import AssistantMessage, ToolResultBlock, ToolUseBlock, UserMessage

from agentlog.domain.errors import StoreUnavailable
from agentlog.domain.events import (
    CustomEventRecorded,
    Event,
    RunFailed,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    encode_event,
    type_of,
)
from agentlog.infra.agent.run.recorder import RunRecorder, fit_event
from agentlog.infra.agent.sdk.translate import SdkTranslator


def assistant(*blocks: Any) -> AssistantMessage:
    return AssistantMessage(content=list(blocks), model="m", message_id="m1")


def types(events: Sequence[Event]) -> list[str]:
    return [type_of(e) for e in events]


ADD_DONE = {
    "hook_event_name": "PostToolUse",
    "tool_name": "mcp__demo__add",
    "tool_input": {"a": 2, "b": 3},
    "tool_response": [{"type": "text", "text": "5"}],
    "tool_use_id": "t1",
}


def test_a_hook_that_overtakes_the_transcript_records_the_start_first() -> None:
    translator = SdkTranslator("r")

    from_hook = translator.post_tool_use(ADD_DONE)
    from_frame = translator.translate(assistant(ToolUseBlock("t1", "mcp__demo__add", {"a": 2})))
    from_result = translator.translate(UserMessage([ToolResultBlock("t1", "5")]))

    assert types(from_hook) == ["tool_call_started", "tool_call_succeeded"]
    started, succeeded = from_hook
    assert isinstance(started, ToolCallStarted) and isinstance(succeeded, ToolCallSucceeded)
    assert (started.tool_name, started.input) == ("mcp__demo__add", {"a": 2, "b": 3})
    assert (succeeded.output, succeeded.source) == ("5", "hook")
    assert types(from_frame) == ["step_started"]  # the start is not recorded twice
    assert from_result == []  # nor the end
    assert translator.pending_tool_calls() == []


def test_the_transcript_first_makes_the_hook_a_no_op() -> None:
    translator = SdkTranslator("r")
    translator.translate(assistant(ToolUseBlock("t1", "mcp__demo__add", {})))

    first = translator.translate(UserMessage([ToolResultBlock("t1", "5")]))

    assert types(first) == ["tool_call_succeeded"]
    assert translator.post_tool_use(ADD_DONE) == []


def test_a_built_in_tools_structured_response_is_left_to_the_transcript() -> None:
    translator = SdkTranslator("r")
    translator.translate(assistant(ToolUseBlock("t1", "Bash", {"command": "echo hi"})))
    bash = {"tool_use_id": "t1", "tool_name": "Bash", "tool_response": {"stdout": "hi"}}

    assert translator.post_tool_use(bash) == []
    (succeeded,) = translator.translate(
        UserMessage([ToolResultBlock("t1", "hi")], tool_use_result={"stdout": "hi"})
    )
    assert isinstance(succeeded, ToolCallSucceeded)
    assert (succeeded.output, succeeded.structured_output) == ("hi", {"stdout": "hi"})


def test_a_failure_hook_and_a_denial_end_the_call_once() -> None:
    translator = SdkTranslator("r")
    translator.translate(
        assistant(ToolUseBlock("t1", "Read", {}), ToolUseBlock("t2", "Bash", {"command": "x"}))
    )

    failed = translator.post_tool_use_failure(
        {
            "tool_use_id": "t1",
            "tool_name": "Read",
            "error": "File does not exist.",
            "is_interrupt": False,
        }
    )
    denied = translator.denied("t2", "Bash is off.", tool_name="Bash", tool_input={"command": "x"})
    denial_text = "PreToolUse:Bash hook error: Bash is off."

    assert failed == [
        ToolCallFailed(
            run_id="r", tool_call_id="t1", error_text="File does not exist.", source="hook"
        )
    ]
    assert denied == [ToolCallDenied(run_id="r", tool_call_id="t2", reason="Bash is off.")]
    assert (
        translator.translate(UserMessage([ToolResultBlock("t2", denial_text, is_error=True)])) == []
    )
    assert translator.post_tool_use_failure({"tool_use_id": "t1", "error": "again"}) == []


def test_the_safety_net_interrupts_only_calls_still_open() -> None:
    translator = SdkTranslator("r")
    translator.translate(
        assistant(
            ToolUseBlock("t1", "a", {}), ToolUseBlock("t2", "b", {}), ToolUseBlock("t3", "c", {})
        )
    )
    translator.translate(UserMessage([ToolResultBlock("t2", "ok")]))

    closing = translator.interrupt_pending("interrupted: cancelled")

    assert [(e.tool_call_id, e.interrupted, e.source) for e in closing] == [  # type: ignore[attr-defined]
        ("t1", True, "runner"),
        ("t3", True, "runner"),
    ]
    assert translator.interrupt_pending("again") == []


# -- the ordered writer ----------------------------------------------------------------------


class SlowStore:
    """Appends after a delay; fails the first `flaky` appends with an unknown outcome."""

    max_event_bytes = 2000

    def __init__(self, flaky: int = 0) -> None:
        self.appended: list[tuple[str, list[Event]]] = []
        self.keys: list[str | None] = []
        self.flaky = flaky

    async def append(
        self,
        session_id: str,
        events: Sequence[Event],
        expected_seq: int | None = None,
        *,
        idempotency_key: str | None = None,
        fence: object = None,
    ) -> list[int]:
        await asyncio.sleep(0.01)
        self.keys.append(idempotency_key)
        if self.flaky:
            self.flaky -= 1
            raise StoreUnavailable("connection lost during COMMIT")
        self.appended.append((idempotency_key or "", list(events)))
        start = sum(len(batch) for _, batch in self.appended) - len(events)
        return list(range(start + 1, start + len(events) + 1))


def custom(n: int) -> CustomEventRecorded:
    return CustomEventRecorded(run_id="r", name="n", data=n)


async def test_the_recorder_appends_in_recording_order_merging_what_waited() -> None:
    store = SlowStore()
    recorder = RunRecorder(store, "s", "r")  # type: ignore[arg-type]

    recorder.record([custom(1)])
    await asyncio.sleep(0)  # the writer takes the first batch alone
    for n in range(2, 6):
        recorder.record([custom(n)])
    recorder.record([])
    await recorder.close()

    assert [[e.data for e in batch] for _, batch in store.appended] == [[1], [2, 3, 4, 5]]  # type: ignore[attr-defined]
    assert recorder.last_seq == 5


async def test_an_append_with_an_unknown_outcome_is_retried_under_the_same_key() -> None:
    store = SlowStore(flaky=2)
    recorder = RunRecorder(store, "s", "r")  # type: ignore[arg-type]

    recorder.record([custom(1)])
    await recorder.close()

    assert store.keys == ["run:r:1"] * 3
    assert len(store.appended) == 1
    assert recorder.failure is None


async def test_a_failing_store_delays_the_record_and_drops_nothing_while_the_lease_holds() -> None:
    failures: list[BaseException] = []
    store = SlowStore(flaky=12)
    recorder = RunRecorder(
        store,  # type: ignore[arg-type]
        "s",
        "r",
        on_failure=failures.append,
        stop_after_seconds=0.1,
        max_backoff_seconds=0.02,
    )

    recorder.record([custom(1)])
    await asyncio.sleep(0.05)  # the first batch is failing when the second is recorded
    recorder.record([custom(2)])
    await recorder.close()

    # Told to stop the agent after 0.1 s, but every event still reached the log, in order.
    assert [type(f) for f in failures] == [StoreUnavailable]
    assert [[e.data for e in batch] for _, batch in store.appended] == [[1], [2]]  # type: ignore[attr-defined]
    assert recorder.delayed_batches == 1 and recorder.dropped_events == 0


async def test_without_the_lease_only_the_terminal_event_keeps_its_own_budget() -> None:
    store = SlowStore(flaky=1000)
    recorder = RunRecorder(
        store,  # type: ignore[arg-type]
        "s",
        "r",
        holds_lease=lambda: False,
        terminal_budget_seconds=0.3,
        max_backoff_seconds=0.02,
    )
    recorder.record([custom(1)])
    await recorder.flush()
    tries = len(store.keys)
    recorder.record([RunFailed(run_id="r", error="lost")])
    await recorder.close()

    assert tries == 1  # dropped at once: the run may not write any more
    assert len(store.keys) - tries > 3  # the terminal event was retried for its budget
    assert recorder.dropped_events == 2


@pytest.mark.parametrize("limit", [600, 2000])
def test_an_oversized_event_is_cut_down_to_fit_and_still_decodes(limit: int) -> None:
    event = ToolCallSucceeded(
        run_id="r", tool_call_id="t1", output="é" * 3000, structured_output={"stdout": "x" * 3000}
    )

    fitted = fit_event(event, limit)

    assert len(encode_event(fitted)) <= limit
    assert isinstance(fitted, ToolCallSucceeded) and fitted.tool_call_id == "t1"
    assert "[cut: " in str(fitted.output) + str(fitted.structured_output)
    assert fit_event(custom(1), limit) == custom(1)
