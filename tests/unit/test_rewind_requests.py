"""How UI message ids map to turns and rewind points (infra/sessions/rewinds.py): the pure
part, over folded logs. The HTTP behaviour is in tests/e2e/test_rewind_http.py."""

from __future__ import annotations

from typing import Any

import pytest

from agentlog.domain.errors import RewindRefused
from agentlog.domain.events import (
    ConversationRewound,
    CustomEventRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallStarted,
)
from agentlog.infra.sessions.rewinds import (
    PlannedRun,
    Turn,
    _placed,
    branch_of,
    client_message_id,
    plan_submit,
)
from agentlog.projections.ui_messages import fold
from tests.strategies import record


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
    assert branch.turns == [
        Turn("a", "first", 2, user_message_id="a:user", position=0),
        Turn("b", "second", 10, user_message_id="b:user", position=3),
    ]
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
    # A new message: the client's id for it is kept.
    new = PlannedRun(prompt="q", user_message_id="x")
    assert await plan_submit(store, "s", branch, None, [user("x")], "q") == new


NAMED = record(
    "s",
    [
        SessionCreated(),
        RunStarted(run_id="a", prompt="first", user_message_id="chat-1"),  # 2
        RunFinished(run_id="a"),
        RunStarted(run_id="b", prompt="second"),  # 4: recorded before clients named it
        RunFinished(run_id="b"),
        RunStarted(run_id="c", prompt="third", user_message_id="chat-3"),  # 6
        RunFinished(run_id="c"),
    ],
)


def test_a_turn_is_named_by_the_clients_id_for_its_prompt_and_by_run_user() -> None:
    state = fold(NAMED)
    assert [m.id for m in state.messages] == ["chat-1", "a", "b:user", "b", "chat-3", "c"]
    branch = branch_of(state)
    assert [t.user_message_id for t in branch.turns] == ["chat-1", "b:user", "chat-3"]
    assert [t.prompt for t in branch.turns] == ["first", "second", "third"]
    for names, turn in ((("chat-1", "a:user", "a"), 0), (("b:user", "b"), 1)):
        for name in names:
            assert branch.turn_of(name) == branch.turns[turn], name
    assert branch.turn_of("c:user") == branch.turn_of("chat-3") == branch.turns[2]


def test_the_ids_a_new_user_message_may_not_take_are_those_that_stay() -> None:
    branch = branch_of(fold(NAMED))
    everything = branch.taken_ids(None)
    assert {"chat-1", "a:user", "a", "b:user", "chat-3", "c:user", "c"} <= everything
    # Replacing the second turn: its ids and the third's are free again.
    assert branch.taken_ids(branch.turns[1]) == {"chat-1", "a", "a:user"}
    assert branch.taken_ids(branch.turns[0]) == set()


def test_the_clients_id_is_the_last_user_messages_and_must_be_plain() -> None:
    assert client_message_id([]) is None
    assert client_message_id([user("x"), assistant("y")]) is None
    assert client_message_id([{"role": "user", "parts": []}]) is None
    assert client_message_id([user("a"), user("Zq3_x.y:z-1")]) == "Zq3_x.y:z-1"
    for fine in ("custom:note", "run_1:user", "run:x"):
        assert client_message_id([user(fine)]) == fine
    for bad in ("", "a b", "é", "x" * 201, 7, None, "a/b", "custom:12", "run:3"):
        with pytest.raises(RewindRefused) as refused:
            client_message_id([{"id": bad, "role": "user", "parts": []}])
        assert (refused.value.http_status, refused.value.code) == (400, "invalid_message_id")
