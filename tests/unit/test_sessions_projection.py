"""The sessions list projection: each rule by example, then properties over interleaved logs."""

from __future__ import annotations

import itertools

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    HeartbeatRecorded,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    SessionForked,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.projections.sessions import SessionSummary, apply, fold
from tests.strategies import T0, interleaved_logs, record


def summary(*events: SessionEvent) -> SessionSummary:
    return fold(record("s", [SessionCreated(title="Demo"), *events]))["s"]


def test_a_new_session_is_idle_with_its_title_and_times() -> None:
    row = summary()
    assert (row.session_id, row.title, row.status, row.head) == ("s", "Demo", "idle", 1)
    assert row.created_at == row.last_activity_at
    assert (row.runs, row.tool_calls, row.active_run_id) == (0, 0, None)


def test_the_session_shows_the_agent_its_first_event_names() -> None:
    named = fold(record("s", [SessionCreated(agent="support"), RunStarted(prompt="x")]))["s"]
    assert named.agent == "support"
    # Created before agents had names: the first run that names one tells.
    runs = [RunStarted(prompt="x", agent_name="demo"), RunStarted(prompt="y", agent_name="b")]
    assert summary(*runs).agent == "demo"
    assert summary().agent is None


def test_a_run_without_a_terminal_event_is_running() -> None:
    row = summary(RunStarted(run_id="r1", prompt="x"), HeartbeatRecorded(run_id="r1"))
    assert (row.status, row.active_run_id, row.runs, row.head) == ("running", "r1", 1, 3)
    assert row.last_activity_at > row.created_at


def test_the_last_run_decides_the_status() -> None:
    def status(end: SessionEvent) -> str:
        return summary(RunStarted(run_id="r1", prompt="x"), end).status

    assert status(RunFinished(run_id="r1")) == "idle"
    assert status(RunFinished(run_id="r1", is_error=True)) == "failed"
    assert status(RunFailed(run_id="r1", error="boom")) == "failed"
    assert status(RunCancelled(run_id="r1")) == "idle"
    assert status(RunAbandoned(run_id="r1")) == "abandoned"


def test_a_failed_run_followed_by_a_new_one_is_running_again() -> None:
    row = summary(
        RunStarted(run_id="r1", prompt="x"),
        RunFailed(run_id="r1", error="boom"),
        RunStarted(run_id="r2", prompt="y"),
    )
    assert (row.status, row.active_run_id, row.runs) == ("running", "r2", 2)


def test_a_terminal_event_for_another_run_does_not_change_the_status() -> None:
    row = summary(
        RunStarted(run_id="r1", prompt="x"),
        RunStarted(run_id="r2", prompt="y"),
        RunAbandoned(run_id="r1"),
    )
    assert (row.status, row.active_run_id, row.head) == ("running", "r2", 4)
    row = summary(
        RunStarted(run_id="r1", prompt="x"), RunFinished(run_id="r1"), RunAbandoned(run_id="r1")
    )
    assert row.status == "idle"


def test_tool_calls_are_counted_when_they_start() -> None:
    row = summary(
        RunStarted(run_id="r1", prompt="x"),
        ToolCallStarted(run_id="r1", tool_call_id="t1", tool_name="Bash"),
        ToolCallStarted(run_id="r1", tool_call_id="t2", tool_name="Read"),
        ToolCallSucceeded(run_id="r1", tool_call_id="t1"),
    )
    assert row.tool_calls == 2


def test_reapplying_an_event_changes_nothing() -> None:
    events = record("s", [SessionCreated(), RunStarted(run_id="r1", prompt="x")])
    rows = fold(events)
    for recorded in events:
        assert apply(rows["s"], recorded) is rows["s"]
    assert fold(events, rows) == rows


def test_fold_leaves_the_mapping_it_was_given_alone() -> None:
    rows = fold(record("s", [SessionCreated()]))
    copy = dict(rows)
    fold(record("s", [RunStarted(run_id="r1", prompt="x")], first_seq=2), rows)
    assert rows == copy


def test_sessions_fold_independently() -> None:
    a = record("a", [SessionCreated(), RunStarted(run_id="r1", prompt="x")])
    b = record("b", [SessionCreated()], start=T0)
    rows = fold([a[0], b[0], a[1]])
    assert (rows["a"].status, rows["b"].status) == ("running", "idle")


# -- properties over interleaved random logs -------------------------------------------------

Rows = dict[str, SessionSummary]


def roundtrip(rows: Rows) -> Rows:
    return msgspec.json.decode(msgspec.json.encode(rows), type=Rows)


def expected_status(events: list[RecordedEvent]) -> tuple[str, str | None]:
    """Status and active run of one session, read straight off its events."""
    runs = [e.event for e in events if isinstance(e.event, RunStarted)]
    if not runs:
        return "idle", None
    last = runs[-1].run_id
    after = events[max(i for i, e in enumerate(events) if isinstance(e.event, RunStarted)) :]
    ends = [e.event for e in after if isinstance(e.event, RUN_TERMINAL_TYPES)]
    ends = [e for e in ends if e.run_id == last]
    if not ends:
        return "running", last
    end = ends[0]
    if isinstance(end, RunFailed) or (isinstance(end, RunFinished) and end.is_error):
        return "failed", None
    return ("abandoned" if isinstance(end, RunAbandoned) else "idle"), None


@settings(max_examples=150, deadline=None)
@given(interleaved_logs(), st.lists(st.integers(0, 300), max_size=6), st.data())
def test_chunked_and_replayed_folds_agree_and_match_the_log(
    events: list[RecordedEvent], cuts: list[int], data: st.DataObject
) -> None:
    whole = fold(events)

    rows: Rows = {}
    bounds = [0, *sorted(min(c, len(events)) for c in cuts), len(events)]
    for start, end in itertools.pairwise(bounds):
        rows = roundtrip(fold(events[start:end], rows))
    assert rows == whole

    replayed: list[RecordedEvent] = []
    for i, recorded in enumerate(events):
        replayed.append(recorded)
        replayed += data.draw(st.lists(st.sampled_from(events[: i + 1]), max_size=2))
    assert fold(replayed) == whole

    for session_id, row in whole.items():
        own = [e for e in events if e.session_id == session_id]
        assert row.head == len(own)
        assert row.created_at == own[0].time
        assert row.last_activity_at == own[-1].time
        assert row.runs == sum(isinstance(e.event, RunStarted) for e in own)
        assert row.tool_calls == sum(isinstance(e.event, ToolCallStarted) for e in own)
        assert (row.status, row.active_run_id) == expected_status(own)


def test_usage_counts_each_run_once_whatever_ends_it() -> None:
    def finished(run: str, tokens: int, cost: float) -> RunFinished:
        return RunFinished(
            run_id=run,
            total_cost_usd=cost,
            model_usage={"m": {"inputTokens": tokens, "outputTokens": 1, "costUSD": cost}},
        )

    row = summary(
        RunStarted(run_id="r1", prompt="x", agent="claude"),
        finished("r1", 100, 0.5),
        finished("r1", 100, 0.5),  # a repeated terminal event: counted already
        RunStarted(run_id="r2", prompt="x", agent="claude"),
        RunCancelled(
            run_id="r2", usage={"input_tokens": 10, "output_tokens": 2}, total_cost_usd=0.25
        ),
        RunStarted(run_id="r3", prompt="x", agent="claude"),
        RunAbandoned(run_id="r3"),  # recovered: its process never reported a result
        finished("r3", 1000, 9.0),  # ... and a late result of it changes nothing
        RunStarted(run_id="r4", prompt="x", agent="scripted"),
        finished("r4", 50, 0.0964),  # the CLI's made-up price for the scripted model
    )
    usage = row.usage
    assert (usage.input_tokens, usage.output_tokens) == (160, 4)
    assert usage.cost_usd == 0.75
    assert (usage.runs, usage.scripted_runs) == (3, 1)
    assert row.runs == 4


def test_a_fork_counts_only_its_own_runs_usage_and_was_created_when_forked() -> None:
    def finished(run: str, cost: float) -> RunFinished:
        return RunFinished(
            run_id=run,
            total_cost_usd=cost,
            model_usage={"m": {"inputTokens": 10, "outputTokens": 1, "costUSD": cost}},
        )

    events = record(
        "fork",
        [
            SessionCreated(title="Demo"),
            RunStarted(run_id="r1", prompt="x", agent="claude"),
            finished("r1", 0.5),  # copied from the source, which paid for it
            SessionForked(from_session_id="src", at_seq=3, agent_session="a"),
            RunStarted(run_id="r2", prompt="x", agent="claude"),
            finished("r2", 0.25),
        ],
    )
    at_fork = fold(events[:4])["fork"]
    assert (at_fork.usage.runs, at_fork.usage.cost_usd, at_fork.runs) == (0, 0.0, 1)
    assert at_fork.created_at == events[3].time > events[0].time
    row = fold(events)["fork"]
    assert (row.usage.runs, row.usage.cost_usd, row.runs, row.status) == (1, 0.25, 2, "idle")
    assert row.title == "Demo"
