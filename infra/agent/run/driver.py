"""One turn through the SDK: a `ClaudeSDKClient` used as an async context manager (its exit
always disconnects and reaps the CLI), `query(prompt)`, then one reader over
`receive_response()` that translates each SDK message and records the events at once.

The reader's pending read is never cancelled or timed out to make room for anything else (a
cancelled read can break the SDK's stream and drop tool results): it stays pending, however
long a tool runs, until the result or a hard stop. Heartbeats come from their own task.

How a turn's end is recorded:
- a result that is not an interrupt: `run_finished` with the result frame whole; a model error
  is `run_finished` with `is_error` true (plus subtype, terminal_reason, api_error_status), as
  the turn did end with a result, usage and cost. The projections show it as failed.
- an interrupt (our cancel, or the CLI's `aborted_*` terminal reason): `run_cancelled`.
- no result at all (the CLI crashed or refused to start, the SDK raised, the lock was lost):
  `run_failed` with the error.
The safety net: whatever ended the turn, every tool call still open fails as interrupted and
the run gets exactly one terminal event.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage

from agentlog.domain.events import (
    AgentStatusReported,
    Event,
    HeartbeatRecorded,
    RunCancelled,
    RunFailed,
    RunFinished,
    SteeringDelivered,
    ToolCallFailed,
)
from agentlog.domain.ports.run_lock import LockLease
from agentlog.infra.agent.agents.catalog import HostedAgent
from agentlog.infra.agent.run.approval_gate import ApprovalGate
from agentlog.infra.agent.run.recorder import RunRecorder
from agentlog.infra.agent.sandbox.metering import RunMeter
from agentlog.infra.agent.sdk.translate import SdkTranslator
from agentlog.infra.agent.transcripts.conversion import prompt_uuid

log = logging.getLogger(__name__)


@dataclass
class RunInFlight:
    """One turn in flight in this process."""

    session_id: str
    run_id: str
    agent_session: (
        str  # the CLI session this run resumes or starts (infra/agent/transcripts/branching.py)
    )
    prompt: str
    lease: LockLease
    start_seq: int
    # Where the session's latest earlier run started (None: this is its first run).
    previous_run_seq: int | None
    # Where the approvals this run may settle begin (a continuation's: the asking run's start).
    approvals_since: int | None
    translator: SdkTranslator
    recorder: RunRecorder
    gate: ApprovalGate | None = None
    # The hosted agent and, for a team's agent, its options for this run (None: the demo).
    agent: HostedAgent | None = None
    team_options: ClaudeAgentOptions | None = None
    # The user message's content: the prompt, or with files its content blocks
    # (agentlog.infra.agent.run.prompt_content). None: the prompt.
    content: str | list[dict[str, Any]] | None = None
    # A continuation has no prompt: the resumed CLI settles its deferred calls by itself.
    continuation: bool = False
    # Whether prompts were waiting in the queue when the run started (its `queue_from`).
    queue_waited: bool = False
    # Tools this run refuses: a crash interrupted them in the turn it continues, and they are
    # marked not to be retried (agentlog.domain.rules.crash_continuation).
    not_again: frozenset[str] = frozenset()
    task: asyncio.Task[None] | None = None
    client: ClaudeSDKClient | None = None
    cancel_reason: str | None = None
    failure: str | None = None  # why the run must stop (lock lost, store failed)
    lock_lost: bool = False
    terminal_recorded: bool = False
    # Shutting down with crash continuation on: the CLI is stopped and nothing more is
    # recorded, so the run is left open for another instance to continue (runner.close).
    handing_off: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    stderr: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))
    # The process that ends the run's CLI if this server dies
    # (agentlog.infra.agent.recovery.orphan_watch).
    watch: asyncio.subprocess.Process | None = None
    # The run's account at the model gateway (sandboxed runs): its usage and cost, as measured
    # there, replace what the CLI's result claims.
    meter: RunMeter | None = None
    # Steering prompts written to the CLI and not yet delivered, by their message uuid: the
    # CLI's `requesting` status lists the uuids of the user messages a model request carries.
    steers: dict[str, SteeringDelivered] = field(default_factory=dict)

    @property
    def stopping(self) -> bool:
        return self.cancel_reason is not None or self.failure is not None or self.handing_off


async def drive_turn(run: RunInFlight, client: ClaudeSDKClient) -> BaseException | None:
    """Send the prompt and read the turn until its result, or until the run must stop.
    Returns the error that ended the stream, if any."""
    run.client = client
    try:
        if run.stopping:
            return None
        if not run.continuation:
            await client.query(_prompt_message(run))
        return await _read_until_end(run, client)
    finally:
        run.client = None


async def _prompt_message(run: RunInFlight) -> AsyncIterator[dict[str, Any]]:
    """The prompt as the SDK sends a string prompt (or, with files, a list of content blocks:
    the CLI's stream-json input takes either), plus the uuid its transcript line gets
    (`prompt_uuid`): where a rewind or a fork cuts the CLI's own transcript."""
    yield {
        "type": "user",
        "message": {"role": "user", "content": run.prompt if run.content is None else run.content},
        "parent_tool_use_id": None,
        "uuid": prompt_uuid(run.run_id),
    }


def steering_uuid(run_id: str, queued_seq: int) -> str:
    """The uuid of a steering prompt's user message: how the CLI names it when a model
    request carries it (stable, so a retried hand-over is the same message)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentlog:steer:{run_id}:{queued_seq}"))


async def steering_message(prompt: str, marker: str) -> AsyncIterator[dict[str, Any]]:
    """A user message for the running turn, in the SDK's streaming input: the CLI reads it
    from stdin while the turn runs and adds it to the next model request (a step boundary)."""
    yield {
        "type": "user",
        "message": {"role": "user", "content": prompt},
        "parent_tool_use_id": None,
        "uuid": marker,
    }


def _delivered_steers(run: RunInFlight, events: list[Event]) -> list[Event]:
    """`events` with `steering_delivered` after the `requesting` status that carries each
    steering prompt: the model request that follows is the step that received it."""
    if not run.steers or not any(isinstance(e, AgentStatusReported) for e in events):
        return events
    out: list[Event] = []
    for event in events:
        out.append(event)
        if isinstance(event, AgentStatusReported) and event.data.get("status") == "requesting":
            carried = event.data.get("user_message_uuids") or []
            for marker in carried if isinstance(carried, list) else []:
                delivered = run.steers.pop(marker, None) if isinstance(marker, str) else None
                if delivered is not None:
                    out.append(delivered)
    return out


async def heartbeats(run: RunInFlight, interval: float) -> None:
    """`heartbeat` every `interval` seconds until the run's terminal event is recorded."""
    next_beat = time.monotonic() + interval
    while not run.terminal_recorded:
        await asyncio.sleep(max(0.0, next_beat - time.monotonic()))
        next_beat = max(next_beat + interval, time.monotonic() + interval / 2)
        if not run.terminal_recorded:  # after it, only the teardown keeps the lock
            run.recorder.record([HeartbeatRecorded(run_id=run.run_id)])


async def _read_until_end(run: RunInFlight, client: ClaudeSDKClient) -> BaseException | None:
    reader = asyncio.create_task(_read(run, client), name=f"agentlog-reader-{run.run_id}")
    stop = asyncio.create_task(run.stop.wait())
    try:
        await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not reader.done():
        # A hard stop (cancel grace over, lock lost): the stream is abandoned for good, so
        # cancelling its read is safe now; leaving the client context then reaps the CLI.
        reader.cancel()
    try:
        await reader
    except asyncio.CancelledError:
        if not reader.cancelled():
            raise
        return None
    except Exception as exc:  # noqa: BLE001 - SDK errors (ResultError, ProcessError, ...)
        return exc
    return None


async def _read(run: RunInFlight, client: ClaudeSDKClient) -> None:
    translator = run.translator
    async for message in client.receive_response():
        events = _delivered_steers(run, translator.translate(message))
        if run.cancel_reason is not None:
            # After our interrupt the CLI fails the running calls ("The user doesn't want
            # to proceed..."): they were interrupted, not failing by themselves.
            events = [_as_interrupted(e) for e in events]
        if isinstance(message, ResultMessage):
            events = _result_events(run, events)
        run.recorder.record(events)


def _result_events(run: RunInFlight, events: list[Event]) -> list[Event]:
    """The result's events with the run's terminal decided (see the module docstring)."""
    outcome = run.translator.outcome
    body = [e for e in events if not isinstance(e, RunFinished)]
    finished = [e for e in events if isinstance(e, RunFinished)]
    if run.meter is not None:
        finished = [run.meter.measured(e) for e in finished]
    cancelled = outcome is not None and (
        outcome.cancelled or (run.cancel_reason is not None and outcome.is_error)
    )
    if cancelled:
        reason = run.cancel_reason or "interrupted"
        body += run.translator.interrupt_pending(f"interrupted: {reason}")
        body.append(_cancelled_with_usage(run.run_id, reason, finished))
    else:
        body += run.translator.interrupt_pending(
            "interrupted: the turn ended before the tool reported back"
        )
        body += finished
    run.terminal_recorded = True
    return body


def _cancelled_with_usage(run_id: str, reason: str, finished: Sequence[Event]) -> RunCancelled:
    """`run_cancelled`, carrying what the interrupted turn's result said it cost."""
    for event in finished:
        if isinstance(event, RunFinished):
            return RunCancelled(
                run_id=run_id,
                reason=reason,
                total_cost_usd=event.total_cost_usd,
                usage=event.usage,
                model_usage=event.model_usage,
            )
    return RunCancelled(run_id=run_id, reason=reason)


def safety_net(run: RunInFlight, error: BaseException | None) -> None:
    """Every open tool call and the run itself get their terminal events, once."""
    if run.terminal_recorded:
        if error is not None:
            log.debug("run %s: after its result: %r", run.run_id, error)
        return
    events = run.translator.finish()
    terminal: RunCancelled | RunFailed
    if run.cancel_reason is not None and run.failure is None:
        events += run.translator.interrupt_pending(f"interrupted: {run.cancel_reason}")
        terminal = RunCancelled(run_id=run.run_id, reason=run.cancel_reason)
    else:
        why = run.failure or _describe(error, run.stderr)
        events += run.translator.interrupt_pending(f"interrupted: {why}")
        terminal = RunFailed(
            run_id=run.run_id, error=why, terminal_reason=_terminal_reason(error, run)
        )
    if run.meter is not None and run.meter.calls:
        # No result, but the model calls were made: the gateway's measure of them.
        terminal = run.meter.measured(terminal)
    events.append(terminal)
    run.recorder.record(events)
    run.terminal_recorded = True


def _as_interrupted(event: Event) -> Event:
    if isinstance(event, ToolCallFailed) and not event.interrupted:
        return msgspec.structs.replace(event, interrupted=True)
    return event


def _describe(error: BaseException | None, stderr: Sequence[str]) -> str:
    if error is None:
        return "the agent stopped without a result"
    text = str(error).strip() or type(error).__name__
    tail = [line for line in stderr if line.strip()][-3:]
    if tail and "Check stderr output" in text:
        text = text.replace("Check stderr output for details", " | ".join(tail))
    return f"{type(error).__name__}: {text}"


def _terminal_reason(error: BaseException | None, run: RunInFlight) -> str:
    if run.failure is not None:
        return "runner_stopped"
    if error is None:
        return "no_result"
    exit_code = getattr(error, "exit_code", None)
    return "agent_crashed" if isinstance(exit_code, int) and exit_code < 0 else "agent_error"
