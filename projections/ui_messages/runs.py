"""A run's messages: its start (the prompt, the assistant message), its model and its end."""

from __future__ import annotations

from msgspec.structs import replace

from agentlog.domain.events import (
    AgentInitialized,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
)
from agentlog.projections.ui_messages.builder import Builder, Handler
from agentlog.projections.ui_messages.state import FilePart, Message, Part, RunInfo, TextPart
from agentlog.projections.usage import run_usage


def user_message_id(event: RunStarted, run_id: str) -> str:
    """The id of the user message a run's prompt is: the client's own when it gave one."""
    return event.user_message_id or f"{run_id}:user"


def finished_status(event: RunFinished) -> str:
    """A finished run's status: "failed" for an error result, "awaiting_approval" when it
    deferred a call to a person, else "finished"."""
    if event.is_error:
        return "failed"
    return "awaiting_approval" if event.deferred_tool_call_id else "finished"


def finished_error(event: RunFinished) -> str | None:
    """What went wrong in a run that finished with an error result; None when it did not."""
    return (event.result or event.stop_reason or "error") if event.is_error else None


def _run_started(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, RunStarted)
    run_id = event.run_id or f"run:{recorded.seq}"
    if b.run_position(run_id) is not None:
        return
    continued = event.continues_run_id
    position = b.run_position(continued) if continued is not None else None
    if position is not None and position == len(b.messages) - 1:
        message = b.thaw(position)
        assert message.run is not None
        message.run = replace(
            message.run,
            status="running",
            agent=event.agent,
            started_at=recorded.time,
            continued_by=(*message.run.continued_by, run_id),
        )
        b.open_message, b.open_run_id = message, run_id
        assert b.runs is not None
        b.runs[run_id] = position
        return
    previous = b.run_message(None)
    if previous is not None and previous.run is not None:
        previous.run = replace(
            previous.run,
            status="abandoned",
            ended_at=recorded.time,
            error=f"superseded by run {run_id} before it ended",
            superseded_at=recorded.seq,
            superseded_from=previous.run,
        )
    user_id = user_message_id(event, run_id)
    # Files first, then the text: the order useChat's sendMessage({text, files}) builds.
    parts: list[Part] = [
        FilePart(sha256=f.sha256, media_type=f.media_type, size=f.size, filename=f.filename)
        for f in event.files
    ]
    if event.prompt or not parts:
        parts.append(TextPart(message_id=user_id, block_index=0, text=event.prompt, done=True))
    b.messages.append(Message(id=user_id, role="user", parts=tuple(parts), seq=recorded.seq))
    run = RunInfo(agent=event.agent, started_at=recorded.time)
    b.open_message = b.append(Message(id=run_id, role="assistant", run=run, seq=recorded.seq))
    b.open_run_id = run_id
    assert b.runs is not None
    b.runs[run_id] = len(b.messages) - 1


def _agent_initialized(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, AgentInitialized)
    message = b.run_message(event.run_id)
    if message is not None and message.run is not None and event.model is not None:
        message.run = replace(message.run, model=event.model)


def _run_ended(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    message = b.run_message(event.run_id)
    if message is None or message.run is None or message.run.status != "running":
        return
    cost = run_usage(event, agent=message.run.agent)
    run = replace(message.run, ended_at=recorded.time, cost=cost)
    if isinstance(event, RunFinished):
        run = replace(
            run,
            status=finished_status(event),
            usage=event.usage or None,
            total_cost_usd=None if cost is None else cost.cost_usd,
            duration_ms=event.duration_ms,
            num_turns=event.num_turns,
            stop_reason=event.stop_reason,
            error=finished_error(event),
        )
    elif isinstance(event, RunFailed):
        run = replace(run, status="failed", error=event.error, stop_reason=event.terminal_reason)
    elif isinstance(event, RunCancelled):
        run = replace(run, status="cancelled", error=event.reason)
    elif isinstance(event, RunAbandoned):
        run = replace(run, status="abandoned", error=event.reason)
    if message.run.continued_by:
        # A continued message keeps what this run does not say: the AI SDK client merges
        # each run's metadata into the one message.
        run = _merged(message.run, run)
    message.run = run
    if message is b.open_message:
        b.open_message = None
        b.open_run_id = None


def _merged(before: RunInfo, after: RunInfo) -> RunInfo:
    changes = {
        name: getattr(before, name)
        for name in before.__struct_fields__
        if getattr(after, name) is None and getattr(before, name) is not None
    }
    return replace(after, **changes) if changes else after


HANDLERS: dict[type, Handler] = {
    RunStarted: _run_started,
    AgentInitialized: _agent_initialized,
    RunFinished: _run_ended,
    RunFailed: _run_ended,
    RunCancelled: _run_ended,
    RunAbandoned: _run_ended,
}
