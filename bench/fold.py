"""How fast the pure projections fold: events/s over ~110,000 events across 1,000 sessions.

Run: .venv/bin/python bench/fold.py
The events are generated deterministically (seeded): runs with streamed text, reasoning,
parallel tool calls with streamed input, heartbeats and a result. No I/O is timed.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentlog.domain.events import (
    AgentInitialized,
    HeartbeatRecorded,
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    StepFinished,
    StepStarted,
    TextCompleted,
    TextDelta,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
)
from agentlog.projections import sessions, ui_messages

SESSIONS = 1_000
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def run_events(rng: random.Random, session_id: str, n: int) -> list[SessionEvent]:
    """One realistic run: thinking, streamed text, parallel tool calls, heartbeats, a result."""
    r = f"{session_id}-run{n}"
    events: list[SessionEvent] = [
        RunStarted(run_id=r, prompt="Summarise the repository and fix the failing test"),
        AgentInitialized(run_id=r, model="claude-sonnet-4-5", tools=["Bash", "Read"]),
    ]
    for step in range(rng.randint(1, 3)):
        m = f"{r}-msg{step}"
        events.append(StepStarted(run_id=r, message_id=m))
        thinking = [f"thought {i} " for i in range(rng.randint(2, 6))]
        events += [ReasoningDelta(run_id=r, message_id=m, block_index=0, delta=d) for d in thinking]
        events.append(ReasoningCompleted(run_id=r, message_id=m, text="".join(thinking)))
        words = [f"word{i} " for i in range(rng.randint(8, 20))]
        events += [TextDelta(run_id=r, message_id=m, block_index=1, delta=w) for w in words]
        events.append(TextCompleted(run_id=r, message_id=m, block_index=1, text="".join(words)))
        calls = [f"{m}-toolu{i}" for i in range(rng.randint(0, 3))]
        for i, call in enumerate(calls):
            tool_input = {"command": f"pytest -k test_{i}", "timeout": 120}
            raw = json.dumps(tool_input)
            for start in range(0, len(raw), 12):
                events.append(
                    ToolInputDelta(
                        run_id=r,
                        message_id=m,
                        block_index=2 + i,
                        tool_call_id=call,
                        tool_name="Bash",
                        delta=raw[start : start + 12],
                    )
                )
            events.append(
                ToolCallStarted(run_id=r, tool_call_id=call, tool_name="Bash", input=tool_input)
            )
        events.append(StepFinished(run_id=r, message_id=m, usage={"output_tokens": 120}))
        rng.shuffle(calls)
        for call in calls:
            if rng.random() < 0.3:
                events.append(HeartbeatRecorded(run_id=r))
            events.append(ToolCallSucceeded(run_id=r, tool_call_id=call, output="3 passed"))
    events.append(
        RunFinished(run_id=r, result="done", num_turns=2, total_cost_usd=0.01, usage={"x": 1})
    )
    return events


def session_log(rng: random.Random, session_id: str) -> list[RecordedEvent]:
    events: list[SessionEvent] = [SessionCreated(title=session_id)]
    for n in range(rng.randint(1, 3)):
        events += run_events(rng, session_id, n)
    return [
        RecordedEvent(
            session_id=session_id,
            seq=i,
            position=i,
            time=T0 + timedelta(milliseconds=i),
            event=event,
        )
        for i, event in enumerate(events, start=1)
    ]


def best_of(repeat: int, work: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    rng = random.Random(20250101)
    logs = [session_log(rng, f"session-{i}") for i in range(SESSIONS)]
    total = sum(map(len, logs))
    everything = [e for log in logs for e in log]
    print(f"{total:,} events across {SESSIONS:,} sessions (mean {total // SESSIONS} per session)")

    def rebuild() -> None:
        for log in logs:
            ui_messages.fold(log)

    def one_by_one() -> None:
        for log in logs:
            state = ui_messages.EMPTY
            for recorded in log:
                state = ui_messages.apply(state, recorded)

    def batches_of_20() -> None:
        for log in logs:
            state = ui_messages.EMPTY
            for start in range(0, len(log), 20):
                state = ui_messages.fold(log[start : start + 20], state)

    states = [ui_messages.fold(log) for log in logs]

    def read() -> None:
        for state in states:
            ui_messages.to_ui_messages(state, run_active=False)

    for name, work in [
        ("ui_messages.fold, one call per session", rebuild),
        ("ui_messages.fold, batches of 20 events", batches_of_20),
        ("ui_messages.apply, one event at a time", one_by_one),
        ("sessions.fold, all sessions in one call", lambda: sessions.fold(everything)),
    ]:
        seconds = best_of(3, work)
        print(f"{name:<42} {total / seconds:>12,.0f} events/s")
    seconds = best_of(3, read)
    print(f"{'to_ui_messages, run_active=False':<42} {SESSIONS / seconds:>12,.0f} sessions/s")


if __name__ == "__main__":
    main()
