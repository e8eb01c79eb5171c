"""What a session's log leaves open: its running run and the tool calls still waiting.

The one place that answers "is a run or a call open": abandoned-run recovery, external tool
outputs, cancel and the hand-over between runs all fold the log (or a run's part of it) here.

Rules (the sessions projection's, `projections/sessions.py`):
- `run_started` opens its run; a run started while another is open supersedes it.
- a terminal run event naming the open run (or naming no run) closes it.
- a tool call waits from its first `tool_call_started` until its first terminal event; a start
  after its end opens nothing.
- a call whose approval was asked (`tool_approval_requested`) is *parked*, not waiting: it
  waits on a person and then on the next turn, not on a running process, so neither abandoned
  run recovery nor an external `tool_output` may end it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    TOOL_TERMINAL_TYPES,
    RecordedEvent,
    RunStarted,
    ToolApprovalRequested,
    ToolCallStarted,
)

RunState = Literal["running", "ended"]


@dataclass
class OpenWork:
    """A fold over one session's events (apply them in seq order)."""

    open_run_id: str | None = None
    # The seq of the open run's `run_started`.
    open_run_seq: int | None = None
    started_runs: set[str] = field(default_factory=set)
    ended_runs: set[str] = field(default_factory=set)
    # call id -> its start, in start order.
    waiting: dict[str, ToolCallStarted] = field(default_factory=dict)
    # call id -> its start, for calls parked on an approval.
    parked: dict[str, ToolCallStarted] = field(default_factory=dict)
    _resolved: set[str] = field(default_factory=set)

    def apply(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, ToolCallStarted):
            if event.tool_call_id not in self._resolved and event.tool_call_id not in self.parked:
                self.waiting.setdefault(event.tool_call_id, event)
        elif isinstance(event, ToolApprovalRequested):
            call = self.waiting.pop(event.tool_call_id, None)
            if call is not None:
                self.parked[event.tool_call_id] = call
        elif isinstance(event, TOOL_TERMINAL_TYPES):
            self._resolved.add(event.tool_call_id)
            self.waiting.pop(event.tool_call_id, None)
            self.parked.pop(event.tool_call_id, None)
        elif isinstance(event, RunStarted):
            run_id = event.run_id or f"run:{recorded.seq}"
            self.started_runs.add(run_id)
            self.open_run_id, self.open_run_seq = run_id, recorded.seq
        elif isinstance(event, RUN_TERMINAL_TYPES):
            if event.run_id is not None:
                self.ended_runs.add(event.run_id)
            if self.open_run_id is not None and event.run_id in (None, self.open_run_id):
                self.open_run_id = self.open_run_seq = None

    def run_state(self, run_id: str) -> RunState | None:
        """None if the events hold no such run, "ended" once it has a terminal event."""
        if run_id in self.ended_runs:
            return "ended"
        return "running" if run_id in self.started_runs else None

    def waiting_calls(self) -> dict[str, str | None]:
        """Waiting tool calls mapped to their run id."""
        return {call_id: call.run_id for call_id, call in self.waiting.items()}


def open_work(events: Iterable[RecordedEvent]) -> OpenWork:
    work = OpenWork()
    for recorded in events:
        work.apply(recorded)
    return work
