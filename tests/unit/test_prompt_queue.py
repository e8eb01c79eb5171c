"""The queue rule: prompts sent while the session is busy wait in the log, in order."""

from __future__ import annotations

from datetime import UTC, datetime

from agentlog.domain.events import (
    Event,
    PromptQueued,
    QueueCleared,
    RecordedEvent,
    RunFinished,
    RunStarted,
    SteeringDelivered,
)
from agentlog.domain.rules.prompt_queue import (
    decide_send,
    next_prompt,
    prompt_queue,
    queue_from_after,
    queue_start,
)


def log(*events: Event) -> list[RecordedEvent]:
    return [
        RecordedEvent(session_id="s", seq=i, position=i, time=datetime.now(UTC), event=e)
        for i, e in enumerate(events, start=1)
    ]


def test_prompts_wait_in_the_order_queued_until_a_run_answers_them() -> None:
    events = log(
        RunStarted(run_id="r1", prompt="first"),
        PromptQueued(prompt="second", user_message_id="m2"),
        PromptQueued(prompt="third"),
        RunFinished(run_id="r1"),
        RunStarted(run_id="r2", prompt="second", queued_seq=2, queue_from=3),
    )
    queue = prompt_queue(events)
    assert [(q.seq, q.prompt) for q in queue.waiting] == [(3, "third")]
    assert queue.position(3) == 1
    assert queue.position(2) is None
    assert prompt_queue(events[:4]).waiting[0].user_message_id == "m2"


def test_an_interrupt_goes_before_the_prompts_queued_earlier() -> None:
    queue = prompt_queue(
        log(
            RunStarted(run_id="r1", prompt="first"),
            PromptQueued(prompt="later"),
            PromptQueued(prompt="now", interrupt=True),
        )
    )
    assert queue.position(3) == 1 and queue.position(2) == 2
    chosen = next_prompt(approvals_waiting=False, queue=queue)
    assert chosen is not None and chosen.prompt == "now"
    # The queue left behind still begins at the older prompt.
    assert queue_from_after(queue, 3) == 2


def test_a_clear_drops_what_was_queued_up_to_it_and_nothing_after() -> None:
    queue = prompt_queue(
        log(
            RunStarted(run_id="r1", prompt="first"),
            PromptQueued(prompt="dropped"),
            QueueCleared(through_seq=2),
            PromptQueued(prompt="kept"),
        )
    )
    assert [q.prompt for q in queue.waiting] == ["kept"]


def test_nothing_starts_from_the_queue_while_an_approval_waits() -> None:
    queue = prompt_queue(log(PromptQueued(prompt="later")))
    assert next_prompt(approvals_waiting=True, queue=queue) is None
    chosen = next_prompt(approvals_waiting=False, queue=queue)
    assert chosen is not None and chosen.seq == 1
    assert next_prompt(approvals_waiting=False, queue=prompt_queue([])) is None


def test_a_send_queues_behind_an_approval_or_earlier_prompts_else_starts() -> None:
    assert decide_send(approvals_waiting=True, queued=0) == "queue"
    assert decide_send(approvals_waiting=True, queued=2) == "queue"
    assert decide_send(approvals_waiting=False, queued=1) == "queue_and_start_oldest"
    assert decide_send(approvals_waiting=False, queued=0) == "start"


def test_the_queue_is_read_from_where_the_latest_run_says_it_begins() -> None:
    assert queue_start(None, None) == 1
    assert queue_start(9, RunStarted(run_id="r", prompt="p")) == 9
    assert queue_start(9, RunStarted(run_id="r", prompt="p", queue_from=4)) == 4
    assert queue_from_after(prompt_queue([]), None) is None


def test_a_steering_prompt_leaves_the_queue_once_delivered_else_it_waits_its_turn() -> None:
    events = log(
        RunStarted(run_id="r1", prompt="first"),
        PromptQueued(prompt="steer me", steer=True),
        PromptQueued(prompt="later"),
    )
    undelivered = prompt_queue(events)
    assert [q.prompt for q in undelivered.waiting] == ["steer me", "later"]
    delivered = prompt_queue(
        [
            *events,
            RecordedEvent(
                session_id="s",
                seq=4,
                position=4,
                time=datetime.now(UTC),
                event=SteeringDelivered(run_id="r1", queued_seq=2, prompt="steer me"),
            ),
        ]
    )
    assert [q.prompt for q in delivered.waiting] == ["later"]
