"""How UI message ids map to turns and rewind points (transport/rewind_requests.py): the pure
part, over folded logs. The HTTP behaviour is in tests/e2e/test_rewind_http.py."""

from __future__ import annotations

from typing import Any

from domain.events import (
    ConversationRewound,
    CustomEventRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallStarted,
)
from projections.ui_messages import fold
from tests.strategies import record
from transport.rewind_requests import PlannedRun, Turn, _placed, branch_of, plan_submit


def user(message_id: str) -> dict[str, Any]:
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": "q"}]}


def assistant(message_id: str) -> dict[str, Any]:
    return {"id": message_id, "role": "assistant", "parts": []}


LOG = record(
    "s",
    [
        SessionCreated(),
        RunStarted(run_id="a", prompt="first"),  # 2
        ToolCallStarted(run_id="a", tool_call_id="t", tool_name="mcp__demo__publish"),
        ToolApprovalRequested(
            run_id="a", approval_id="p", tool_call_id="t", tool_name="mcp__demo__publish"
        ),
        RunFinished(run_id="a", stop_reason="tool_deferred", deferred_tool_call_id="t"),
        ToolApprovalResponded(run_id="a", approval_id="p", tool_call_id="t", approved=True),
        RunStarted(run_id="a2", prompt="", continues_run_id="a"),  # 7: continues a's message
        RunFinished(run_id="a2"),
        CustomEventRecorded(name="note", data=1),  # 9: a message of no turn
        RunStarted(run_id="b", prompt="second"),  # 10
        RunFinished(run_id="b"),
    ],
)


def test_a_turn_is_named_by_its_prompt_its_answer_and_the_runs_that_continued_it() -> None:
    branch = branch_of(fold(LOG))
    assert branch.turns == [Turn("a", "first", 2), Turn("b", "second", 10)]
    for name in ("a", "a:user", "a2"):
        assert branch.turn_of(name) == branch.turns[0]
    assert branch.turn_of("b:user") == branch.turns[1]
    assert branch.turn_of("custom:9") is None and "custom:9" in branch.others


def test_after_a_rewind_the_turns_set_aside_name_nothing() -> None:
    log = [
        *LOG,
        *record(
            "s",
            [
                ConversationRewound(to_seq=9, agent_session="x", trigger="regenerate"),
                RunStarted(run_id="c", prompt="second"),
            ],
            first_seq=12,
        ),
    ]
    branch = branch_of(fold(log))
    assert [t.run_id for t in branch.turns] == ["a", "c"]
    assert branch.turn_of("b") is None and branch.turn_of("b:user") is None


def test_a_message_the_client_named_is_placed_after_the_answers_before_it() -> None:
    branch = branch_of(fold(LOG))
    assert _placed(branch, []) == 0
    assert _placed(branch, [user("mine"), assistant("a")]) == 1
    assert _placed(branch, [user("a:user"), assistant("a"), assistant("custom:9")]) == 1
    assert _placed(branch, [user("x"), assistant("a"), user("y"), assistant("b")]) == 2
    # Not the branch's order, or a prompt that no answer follows: cannot be placed.
    assert _placed(branch, [user("x"), assistant("b")]) is None
    assert _placed(branch, [user("x"), assistant("a"), user("failed send")]) is None


async def test_a_submit_naming_the_answer_it_continues_is_no_edit() -> None:
    # useChat's sendMessage() after a tool approval or output names the assistant message.
    branch = branch_of(fold(LOG))
    store: Any = None  # never consulted: nothing is looked up for a plain send
    planned = await plan_submit(store, "s", branch, "b", [user("x"), assistant("b")], "q")
    assert planned == PlannedRun(prompt="q")
    assert await plan_submit(store, "s", branch, None, [user("x")], "q") == PlannedRun(prompt="q")
