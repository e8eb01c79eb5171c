"""`fold_changes` names every stored message a fold changed: rows kept one per message and
updated with only those equal the messages of a fresh fold, after any random cut of a log
(approvals, rewinds and the tombstone included)."""

from __future__ import annotations

import itertools

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlog.domain.events import (
    CustomEventRecorded,
    RecordedEvent,
    RunStarted,
    SessionDeleted,
)
from agentlog.projections import ui_messages
from agentlog.projections.ui_messages import EMPTY, Message, MessageChanges, OutsideWindow
from tests.strategies import record, session_logs


def apply_rows(rows: list[Message], after: tuple[Message, ...], changes: MessageChanges) -> None:
    """What a store of one row per message does: write the changed positions, drop the rest."""
    if changes.shrunk:
        del rows[len(after) :]
    for position in changes.positions(len(after)):
        if position < len(rows):
            rows[position] = after[position]
        else:
            assert position == len(rows), "a row written past the end leaves a hole"
            rows.append(after[position])


def cuts_of(log: list[RecordedEvent], cuts: list[int]) -> list[list[RecordedEvent]]:
    bounds = sorted({0, len(log), *(c % (len(log) + 1) for c in cuts)})
    return [log[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None)
@given(
    log=st.one_of(session_logs(rewinds=True), session_logs(approvals=True)),
    cuts=st.lists(st.integers(0, 400), max_size=8),
    tombstone=st.booleans(),
)
def test_rows_updated_by_the_changes_equal_a_fresh_fold(
    log: list[RecordedEvent], cuts: list[int], tombstone: bool
) -> None:
    if tombstone:
        after = [SessionDeleted(), CustomEventRecorded(name="after")]
        log = record("s", [r.event for r in log] + after)
    rows: list[Message] = []
    state = EMPTY
    for batch in cuts_of(log, cuts):
        state, changes = ui_messages.fold_changes(batch, state)
        apply_rows(rows, state.messages, changes)
        assert tuple(rows) == state.messages
    assert state == ui_messages.fold(log)


@settings(max_examples=60, deadline=None)
@given(log=session_logs(max_runs=3))
def test_one_more_event_changes_at_most_the_message_it_lands_in_and_new_ones(
    log: list[RecordedEvent],
) -> None:
    # Without rewinds nothing is taken away: an event touches its run's message (or a call's
    # message, for a late result) and adds messages at the end, never rewrites the others.
    state = EMPTY
    for recorded in log:
        before = state
        state, changes = ui_messages.fold_changes([recorded], state)
        assert not changes.shrunk
        assert len(changes.written) <= 3  # the prompt, the run's message, the closed run
        for position in range(len(before.messages)):
            if position not in changes.written:
                assert state.messages[position] is before.messages[position]


def test_an_event_already_folded_changes_nothing() -> None:
    log = record("s", [CustomEventRecorded(name="x")])
    state, _ = ui_messages.fold_changes(log)
    again, changes = ui_messages.fold_changes(log, state)
    assert again is state and changes == MessageChanges()


@settings(max_examples=150, deadline=None)
@given(
    log=st.one_of(session_logs(rewinds=True), session_logs(approvals=True)),
    cuts=st.lists(st.integers(0, 400), max_size=8),
    windows=st.lists(st.integers(0, 6), min_size=8, max_size=8),
)
def test_a_fold_over_the_newest_messages_equals_the_whole_fold_or_refuses(
    log: list[RecordedEvent], cuts: list[int], windows: list[int]
) -> None:
    # What the projector folds when it holds only a window of the newest messages: the same
    # messages as the whole fold from there on, the same changes shifted, or OutsideWindow.
    state = EMPTY
    refused = folded_in_window = 0
    started: set[str] = set()
    for batch, window in zip(cuts_of(log, cuts), windows, strict=False):
        hidden = max(0, len(state.messages) - window)
        whole, changes = ui_messages.fold_changes(batch, state)
        newest = msgspec.structs.replace(state, messages=state.messages[hidden:])
        # What the projector learns from the run index: runs whose first start is here.
        new_runs = set()
        for recorded in batch:
            if isinstance(recorded.event, RunStarted):
                run_id = recorded.event.run_id or f"run:{recorded.seq}"
                if run_id not in started:
                    new_runs.add(run_id)
                started.add(run_id)
        try:
            part, part_changes = ui_messages.fold_changes(
                batch, newest, hidden, frozenset(new_runs)
            )
        except OutsideWindow:
            refused += 1
        else:
            folded_in_window += 1
            assert part.messages == whole.messages[hidden:]
            assert (part.last_seq, part.open_run_id) == (whole.last_seq, whole.open_run_id)
            assert {p + hidden for p in part_changes.written} == {
                p for p in changes.written if p >= hidden
            }
            assert part_changes.shrunk == changes.shrunk and not (hidden and changes.shrunk)
        state = whole
    assert refused + folded_in_window == len(cuts_of(log, cuts)[: len(windows)])
