"""Continuing a turn after its server died: whether to, and what the log records when it does.

A run whose owner died (its lease lapsed) is continued by a new run instead of ending the turn,
unless the operator turned that off or the turn was already continued `max_continuations` times
in a row. The continuation is one append, made under the session's lease: each call the dead
run left in flight fails as interrupted (the model reads that result when the agent session is
resumed), the dead run is closed `run_abandoned`, and the new `run_started` names the run it
continues (`continues_run_id`, so the UI keeps one assistant message) and how many times in a
row the turn was continued (`resumed_after_crash`). Its prompt asks the model to go on.

Calls whose results the log holds are never run again: the resumed agent session already has
their results. A call in flight at the crash is never run again by agentlog either; the model
decides. A tool marked not to be retried (`no_retry_tools`, e.g. one that charges a card) is
told apart: its interrupted result says it may or may not have run and must not be called again
in this turn, and the continuation refuses any call of it (`not_again`).

A run left waiting on an approval is not continued here: it waits on a person, and the answer
continues it (agentlog.domain.rules.approvals).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from agentlog.domain.events import (
    Event,
    RecordedEvent,
    RunAbandoned,
    RunStarted,
    ToolCallFailed,
    ToolCallStarted,
)
from agentlog.domain.rules.open_work import open_work

# The continuation's prompt: recorded on its `run_started`, sent to the model as a user turn.
CONTINUE_AFTER_CRASH_PROMPT = (
    "[agentlog] The server running this turn stopped, and the turn goes on from the "
    "conversation as it was recorded. Tool calls whose results you have were not run again; "
    "a call whose result says it was interrupted by a server restart did not report back. "
    "Continue from where you left off."
)
INTERRUPTED_BY_RESTART = (
    "interrupted by a server restart: the server running this call stopped before it reported "
    "back, so it may not have finished. It was not run again; call it again only if that is "
    "safe."
)
INTERRUPTED_NOT_AGAIN = (
    "interrupted by a server restart: the server running this call stopped before it reported "
    "back, so it may or may not have run. {tool} is marked not to be retried: it is not run "
    "again in this turn, and a call of it now is refused. Tell the user what may have happened."
)
ABANDONED_FOR_CONTINUATION = "the server running this turn stopped; the turn goes on in run {run}"


@dataclass(frozen=True)
class CrashContinuation:
    """The decision to continue a dead run's turn."""

    continues_run_id: str
    # This continuation's number in a row (the dead run's plus one).
    resumed_after_crash: int
    agent_session: str | None
    # Calls the dead run left in flight, in start order.
    interrupted: tuple[ToolCallStarted, ...]
    # Tools of `interrupted` marked not to be retried: the continuation refuses them.
    not_again: frozenset[str]

    def closing(self, new_run_id: str) -> list[Event]:
        """What closes the dead run, before the continuation's `run_started`."""
        events: list[Event] = [
            ToolCallFailed(
                run_id=call.run_id,
                tool_call_id=call.tool_call_id,
                error_text=(
                    INTERRUPTED_NOT_AGAIN.format(tool=call.tool_name)
                    if call.tool_name in self.not_again
                    else INTERRUPTED_BY_RESTART
                ),
                source="runner",
                interrupted=True,
            )
            for call in self.interrupted
        ]
        events.append(
            RunAbandoned(
                run_id=self.continues_run_id,
                reason=ABANDONED_FOR_CONTINUATION.format(run=new_run_id),
                continued_by=new_run_id,
            )
        )
        return events


def crash_continuation(
    open_run: Iterable[RecordedEvent],
    *,
    max_continuations: int,
    no_retry_tools: Set[str] = frozenset(),
) -> CrashContinuation | None:
    """Whether the open run whose owner died is continued: `open_run` is the log from its
    `run_started` on (the caller holds the session's lease). None when there is no open run,
    it waits on an approval, or its turn was continued `max_continuations` times in a row
    already: then it is abandoned as before."""
    events = list(open_run)
    if not events or not isinstance(events[0].event, RunStarted):
        return None
    started = events[0].event
    work = open_work(events)
    if work.open_run_id is None or work.open_run_id != started.run_id:
        return None
    if work.parked:
        return None  # a call waits on a person's answer: the answer continues the turn
    if started.resumed_after_crash >= max_continuations:
        return None
    interrupted = tuple(work.waiting.values())
    return CrashContinuation(
        continues_run_id=work.open_run_id,
        resumed_after_crash=started.resumed_after_crash + 1,
        agent_session=started.agent_session,
        interrupted=interrupted,
        not_again=frozenset(c.tool_name for c in interrupted if c.tool_name in no_retry_tools),
    )
