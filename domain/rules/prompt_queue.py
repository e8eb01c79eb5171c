"""Prompts sent while the session was busy: queued in the log, answered one turn each, in order.

A prompt sent while a run is active, or while a tool approval waits on a person, is not
refused: it is appended as `prompt_queued` and waits. When nothing runs and nothing waits, the
oldest waiting prompt starts the next turn; that turn's `run_started` names it (`queued_seq`),
which takes it off the queue. `queue_cleared` drops every prompt queued up to its seq. A steering
prompt is queued too, and leaves the queue when the running turn records it delivered
(`steering_delivered`); one the turn ended without taking gets a turn of its own.

Where to read: no waiting prompt lies before the `queue_from` of the session's latest
`run_started` (or before that `run_started` itself when it has none), because every start
writes where the queue it leaves behind begins. So the queue is read from there, never from
the session's start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from agentlog.domain.events import (
    AttachedFile,
    PromptQueued,
    QueueCleared,
    RecordedEvent,
    RunStarted,
    SteeringDelivered,
)


@dataclass(frozen=True)
class QueuedPrompt:
    """A prompt waiting for its turn, and the seq of its `prompt_queued`."""

    seq: int
    prompt: str
    user_message_id: str | None = None
    interrupt: bool = False  # sent to interrupt the run: it goes before the others
    files: list[AttachedFile] = field(default_factory=list)  # sent with it: its turn's files


@dataclass
class PromptQueue:
    """A fold over a session's events from `queue_start` on (apply them in seq order)."""

    waiting: list[QueuedPrompt] = field(default_factory=list)

    def apply(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, PromptQueued):
            queued = QueuedPrompt(
                recorded.seq,
                event.prompt,
                event.user_message_id,
                interrupt=event.interrupt,
                files=list(event.files),
            )
            self.waiting.append(queued)
        elif isinstance(event, RunStarted | SteeringDelivered) and event.queued_seq is not None:
            self.waiting = [q for q in self.waiting if q.seq != event.queued_seq]
        elif isinstance(event, QueueCleared):
            self.waiting = [q for q in self.waiting if q.seq > event.through_seq]

    def position(self, seq: int) -> int | None:
        """1 for the prompt that goes next (interrupts first); None when `seq` waits no more."""
        in_line = [q for q in self.waiting if q.interrupt] + [
            q for q in self.waiting if not q.interrupt
        ]
        for index, queued in enumerate(in_line):
            if queued.seq == seq:
                return index + 1
        return None


def prompt_queue(events: Iterable[RecordedEvent]) -> PromptQueue:
    queue = PromptQueue()
    for recorded in events:
        queue.apply(recorded)
    return queue


def queue_start(latest_run_seq: int | None, latest_run: RunStarted | None) -> int:
    """The first seq the queue must be read from, given the session's latest `run_started`
    and its seq (None, None: the session never ran; read it all)."""
    if latest_run_seq is None or latest_run is None:
        return 1
    if latest_run.queue_from is not None:
        return min(latest_run.queue_from, latest_run_seq)
    return latest_run_seq


SendDecision = Literal["start", "queue", "queue_and_start_oldest"]


def decide_send(*, approvals_waiting: bool, queued: int) -> SendDecision:
    """What a prompt sent while no run is active does (decided under the session's lease).

    - an approval waits: the prompt queues behind it (the answer's turn goes first);
    - prompts are already waiting: it queues behind them, and the oldest starts now;
    - else it starts its turn now.
    """
    if approvals_waiting:
        return "queue"
    if queued:
        return "queue_and_start_oldest"
    return "start"


def next_prompt(*, approvals_waiting: bool, queue: PromptQueue) -> QueuedPrompt | None:
    """The queued prompt whose turn starts now that no run is active: the oldest interrupt,
    else the oldest; none while an approval waits (its answer's turn goes first)."""
    if approvals_waiting or not queue.waiting:
        return None
    return next((q for q in queue.waiting if q.interrupt), queue.waiting[0])


def queue_from_after(queue: PromptQueue, answered: int | None) -> int | None:
    """The `queue_from` of a `run_started` that answers the prompt queued at `answered` (or
    none): the seq of the oldest prompt still waiting after it, None when none waits."""
    for queued in queue.waiting:
        if queued.seq != answered:
            return queued.seq
    return None
