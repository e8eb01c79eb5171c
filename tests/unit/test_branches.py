"""The current branch: a rewind sets aside what came after its `to_seq`, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from agentlog.domain.events import (
    ConversationRewound,
    Event,
    RecordedEvent,
    RunStarted,
    SessionCreated,
)
from agentlog.domain.rules.branches import current_branch


def log(*events: Event) -> list[RecordedEvent]:
    now = datetime.now(UTC)
    return [
        RecordedEvent(session_id="s", seq=i, position=i, time=now, event=e)  # type: ignore[arg-type]
        for i, e in enumerate(events, start=1)
    ]


def seqs(events: list[RecordedEvent]) -> list[int]:
    return [r.seq for r in events]


def test_without_a_rewind_the_branch_is_the_whole_log() -> None:
    events = log(SessionCreated(), RunStarted(run_id="a", prompt="p"))
    assert seqs(current_branch(events)) == [1, 2]


def test_a_rewind_drops_what_came_after_its_point_and_keeps_itself() -> None:
    events = log(
        SessionCreated(),
        RunStarted(run_id="a", prompt="one"),  # 2
        RunStarted(run_id="b", prompt="two"),  # 3
        ConversationRewound(to_seq=2, agent_session="x"),  # 4
        RunStarted(run_id="c", prompt="two again"),  # 5
    )
    assert seqs(current_branch(events)) == [1, 2, 4, 5]


def test_a_later_rewind_can_go_back_further_than_an_earlier_one() -> None:
    events = log(
        SessionCreated(),
        RunStarted(run_id="a", prompt="one"),  # 2
        RunStarted(run_id="b", prompt="two"),  # 3
        ConversationRewound(to_seq=2, agent_session="x"),  # 4
        RunStarted(run_id="c", prompt="two again"),  # 5
        ConversationRewound(to_seq=1, agent_session="y"),  # 6
        RunStarted(run_id="d", prompt="from the top"),  # 7
    )
    assert seqs(current_branch(events)) == [1, 6, 7]
