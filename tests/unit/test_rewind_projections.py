"""The projections after a rewind (regenerate, edit): the conversation, counts and status of
the current branch only, and the cost of every branch; by example, then over random logs."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlog.domain.events import (
    ConversationRewound,
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    TextCompleted,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.branches import current_branch
from agentlog.projections import sessions, ui_messages
from agentlog.projections.ui_messages import EMPTY, ConversationState, fold, to_ui_messages
from tests.strategies import record, session_logs


def answered(run_id: str, prompt: str, text: str, *, tool: bool = False) -> list[SessionEvent]:
    events: list[SessionEvent] = [RunStarted(run_id=run_id, prompt=prompt, agent="claude")]
    if tool:
        events += [
            ToolCallStarted(run_id=run_id, tool_call_id=f"{run_id}-t", tool_name="Read"),
            ToolCallSucceeded(run_id=run_id, tool_call_id=f"{run_id}-t", output="ok"),
        ]
    events += [
        TextCompleted(run_id=run_id, message_id=f"{run_id}-m", block_index=0, text=text),
        RunFinished(
            run_id=run_id,
            result=text,
            total_cost_usd=0.5,
            model_usage={"m": {"inputTokens": 10, "outputTokens": 1, "costUSD": 0.5}},
        ),
    ]
    return events


def texts(log: list[RecordedEvent]) -> list[tuple[str, str]]:
    """(message id, its text) per message, as GET /messages shows them."""
    shown = to_ui_messages(fold(log), run_active=False)
    return [
        (m["id"], "".join(p.get("text", "") for p in m["parts"] if p["type"] == "text"))
        for m in shown
    ]


# seq 1 session_created; run a: 2..4; run b: 5..9 (with a tool call); then the rewind.
TWO_TURNS: list[SessionEvent] = [
    SessionCreated(title="t"),
    *answered("a", "first question", "first answer"),
    *answered("b", "second question", "second answer", tool=True),
]


def test_regenerating_the_last_answer_replaces_it_and_keeps_the_turn_before() -> None:
    log = record(
        "s",
        [
            *TWO_TURNS,
            ConversationRewound(to_seq=4, agent_session="x", trigger="regenerate", message_id="b"),
            *answered("c", "second question", "another second answer"),
        ],
    )
    assert texts(log) == [
        ("a:user", "first question"),
        ("a", "first answer"),
        ("c:user", "second question"),
        ("c", "another second answer"),
    ]


def test_editing_the_first_question_leaves_only_the_new_turn() -> None:
    log = record(
        "s",
        [
            *TWO_TURNS,
            ConversationRewound(to_seq=1, agent_session="x", trigger="edit", message_id="a:user"),
            *answered("c", "edited question", "new answer"),
        ],
    )
    assert texts(log) == [("c:user", "edited question"), ("c", "new answer")]


def test_a_rewind_folded_incrementally_equals_the_whole_fold() -> None:
    log = record(
        "s",
        [
            *TWO_TURNS,
            ConversationRewound(to_seq=4, agent_session="x"),
            *answered("c", "again", "c answer"),
        ],
    )
    state = EMPTY
    for recorded in log:
        state = ui_messages.apply(state, recorded)
    assert state == fold(log)


def test_a_run_closed_by_a_start_the_rewind_dropped_is_open_again() -> None:
    # Run a crashed (no terminal event) and run b's start closed it as abandoned; going back
    # to before b, the branch holds a's start and nothing that ended it.
    log = record(
        "s",
        [
            SessionCreated(),
            RunStarted(run_id="a", prompt="one"),  # 2
            TextCompleted(run_id="a", message_id="m", block_index=0, text="partial"),
            *answered("b", "two", "b answer"),  # 4..6
            ConversationRewound(to_seq=3, agent_session="x"),  # 7
        ],
    )
    state = fold(log)
    assert _branch_view(state) == _branch_view(fold(current_branch(log)))
    assert state.open_run_id == "a"
    assert [m.id for m in state.messages] == ["a:user", "a"]
    assert state.messages[-1].run is not None and state.messages[-1].run.status == "running"
    # The run that answers next closes it again, as it would on a log without the detour.
    after = fold(record("s", answered("c", "three", "c"), first_seq=8), state)
    assert after.messages[1].run is not None and after.messages[1].run.status == "abandoned"


def test_the_sessions_row_counts_the_branch_and_the_cost_of_every_run() -> None:
    log = record(
        "s",
        [
            *TWO_TURNS,
            ConversationRewound(to_seq=4, agent_session="x", trigger="regenerate"),
            *answered("c", "second question", "again"),
        ],
    )
    [row] = sessions.fold(log).values()
    assert (row.runs, row.tool_calls, row.status, row.active_run_id) == (2, 0, "idle", None)
    assert row.title == "t"
    assert row.usage.runs == 3 and row.usage.cost_usd == 1.5
    assert row.head == len(log)


# -- properties over random logs with rewinds ------------------------------------------------

rewinding_logs = session_logs(max_runs=6, approvals=True, rewinds=True)


def _branch_view(state: ConversationState) -> Any:
    return [to_ui_messages(state, run_active=a) for a in (False, True)], state.open_run_id


@settings(max_examples=300, deadline=None)
@given(rewinding_logs)
def test_the_fold_shows_exactly_the_current_branch(log: list[RecordedEvent]) -> None:
    assert _branch_view(fold(log)) == _branch_view(fold(current_branch(log)))


def _roundtrip(state: ConversationState) -> ConversationState:
    return msgspec.json.decode(msgspec.json.encode(state), type=ConversationState)


@settings(max_examples=200, deadline=None)
@given(rewinding_logs, st.lists(st.integers(0, 200), max_size=6))
def test_with_rewinds_chunked_and_one_by_one_folds_agree(
    log: list[RecordedEvent], cuts: list[int]
) -> None:
    whole = fold(log)
    state = EMPTY
    bounds = [0, *sorted(min(c, len(log)) for c in cuts), len(log)]
    for start, end in itertools.pairwise(bounds):
        state = _roundtrip(fold(log[start:end], state))
    assert state == whole
    state = EMPTY
    for recorded in log:
        state = ui_messages.apply(state, recorded)
    assert state == whole


@settings(max_examples=300, deadline=None)
@given(rewinding_logs)
def test_the_sessions_row_counts_the_branch_and_costs_every_branch(
    log: list[RecordedEvent],
) -> None:
    [row] = sessions.fold(log).values()
    [on_branch] = sessions.fold(current_branch(log)).values()
    assert (row.runs, row.tool_calls, row.status, row.active_run_id) == (
        on_branch.runs,
        on_branch.tool_calls,
        on_branch.status,
        on_branch.active_run_id,
    )
    without_rewinds = [r for r in log if not isinstance(r.event, ConversationRewound)]
    [everything] = sessions.fold(without_rewinds).values()
    assert row.usage == everything.usage
    assert row.head == len(log)
