"""How `agentlog inspect` and `agentlog sessions` print: one line per event, colours only on a
terminal, nothing an event holds can break the line or repaint the terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from agentlog.domain.events import (
    ConversationRewound,
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    SessionForked,
    TextDelta,
    ToolCallFailed,
    ToolCallStarted,
)
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.usage import Usage
from agentlog.transport.cli.inspect import (
    SetAside,
    event_line,
    excerpt,
    sessions_table,
    summarize,
    wants_colour,
)

T = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def at(event: SessionEvent, seq: int = 7) -> RecordedEvent:
    return RecordedEvent(session_id="s", seq=seq, position=seq, time=T, event=event)


def test_colours_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert wants_colour(Terminal()) and not wants_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(Terminal())


def test_an_event_line_has_seq_time_type_run_and_summary() -> None:
    started = ToolCallStarted(
        run_id="run_0123456789abcdef", tool_call_id="toolu_1", tool_name="Bash", input={"a": 1}
    )
    assert event_line(at(started)) == (
        "     7  2025-01-02 03:04:05.678  tool_call_started    run_01234567  "
        'Bash toolu_1 input: {"a":1}'
    )
    failed = event_line(at(ToolCallFailed(tool_call_id="t", error_text="no", interrupted=True)))
    assert failed.endswith("tool_call_failed     -             t error: no (interrupted)")
    coloured = event_line(at(ToolCallFailed(tool_call_id="t", error_text="no")), colour=True)
    assert "\x1b[31mtool_call_failed" in coloured and coloured.endswith("\x1b[0m")


def test_summaries_name_the_error_and_the_result() -> None:
    assert summarize(RunFinished(result="x" * 200, is_error=True, num_turns=3)).startswith(
        "error: " + "x" * 57 + "..., 3 turns"
    )
    assert summarize(TextDelta(message_id="m", block_index=2, delta="hi")) == "#2 hi"


def test_a_fork_says_where_it_came_from() -> None:
    forked = SessionForked(from_session_id="src", at_seq=12, agent_session="a")
    assert summarize(forked) == "forked from src at seq 12"


def test_control_characters_are_escaped_and_long_text_cut() -> None:
    assert excerpt("a\nb\t\x1b[31mred\x7f\x9b") == "a\\nb\\t\\x1b[31mred\\x7f\\x9b"
    assert excerpt("é✓🙂") == "é✓🙂"
    assert excerpt("y" * 100, 10) == "yyyyyyy..."
    assert excerpt({"k": [1, None]}) == '{"k":[1,null]}'


def test_the_sessions_table_aligns_its_columns() -> None:
    scripted = Usage(input_tokens=10460, output_tokens=49, runs=1, scripted_runs=1)
    priced = Usage(input_tokens=7, output_tokens=3, cost_usd=0.01234, runs=2)
    rows = [
        SessionSummary(
            session_id="a", created_at=T, last_activity_at=T, head=9, runs=1, usage=scripted
        ),
        SessionSummary(
            session_id="long-id", status="running", created_at=T, last_activity_at=T, head=12345
        ),
        SessionSummary(session_id="b", created_at=T, last_activity_at=T, runs=2, usage=priced),
    ]
    assert sessions_table(rows).splitlines() == [
        "ID       STATUS    HEAD  RUNS  TOKENS IN/OUT      COST  LAST ACTIVITY            TITLE",
        "a        idle         9     1       10460/49  scripted  2025-01-02 03:04:05.678",
        "long-id  running  12345     0                           2025-01-02 03:04:05.678",
        "b        idle         0     2            7/3   $0.0123  2025-01-02 03:04:05.678",
    ]
    assert sessions_table([]).splitlines()[-1] == "(no sessions)"
    assert "\x1b[32mrunning" in sessions_table(rows, colour=True)


def test_a_rewind_says_what_it_set_aside_and_those_events_are_marked() -> None:
    rewound = ConversationRewound(
        to_seq=3, agent_session="a", trigger="regenerate", message_id="run_1"
    )
    assert event_line(at(rewound, seq=9)).endswith(
        "conversation_rewound  -             "
        "regenerate from message run_1: back to seq 3 (seqs 4..8 set aside)"
    )
    delta = event_line(at(TextDelta(message_id="m", block_index=0, delta="hi")), set_aside_by=9)
    assert delta.endswith("[set aside by 9] #0 hi")
    marks = SetAside()
    for recorded in (at(rewound, seq=9), at(rewound, seq=9)):
        marks.learn(recorded)
    assert [marks.by(seq) for seq in (3, 4, 8, 9, 10)] == [None, 9, 9, None, None]


def test_a_team_agents_run_names_the_agent_and_its_version() -> None:
    team = RunStarted(
        prompt="hi", agent_name="support", agent_fingerprint="sha256:0123456789abcdef"
    )
    assert summarize(team) == "prompt: hi (agent scripted support sha256:0123456789abcdef)"
    assert summarize(RunStarted(prompt="hi", agent_name="demo")) == "prompt: hi (agent scripted)"
    assert summarize(SessionCreated(agent="support")) == "untitled, agent: support"
