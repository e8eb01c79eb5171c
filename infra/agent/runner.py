"""The agent runner: one Claude turn per run, driven through the SDK, recorded as it happens.

`AgentRunner` implements `domain.ports.AgentRuns`. Per run:

- `start` checks the session, takes the session's run lock (refused: RunAlreadyActive with the
  holder's run id), records a run its dead owner left behind (`recovery.py`), appends
  `run_started` and returns; the turn runs in a background task of this process.
- The turn: a temporary HOME holding the session's earlier runs as a CLI transcript
  (`transcript.py`), a `ClaudeSDKClient` used as an async context manager (its exit always
  disconnects and reaps the CLI), `query(prompt)`, then one reader over `receive_response()`
  that translates each SDK message and records the events at once (`recorder.py`).
- Heartbeats come from a separate task: every `heartbeat_seconds` it records `heartbeat` and
  refreshes the lock. The reader's pending read is never cancelled or timed out to make room
  for one (a cancelled read can break the SDK's stream and drop tool results): it simply
  stays pending, however long a tool runs. The same task polls for a cancel asked by another
  process. A refresh that fails means another process may own the session now: the run stops.
- Hooks: PreToolUse applies the deny policy (`policy.py`); PostToolUse and PostToolUseFailure
  report tool results. Hook callbacks run concurrently with the message stream, so they and the
  reader end a tool call through one translator method (`SdkTranslator.tool_call_ended`):
  `tool_call_started` first if not yet recorded, the terminal event at most once.
- The safety net (`finally`): whatever ended the turn (result, SDK or CLI error, CLI crash,
  cancel, shutdown), every tool call still open fails as interrupted and the run gets exactly
  one terminal event; then the events are flushed, leftover CLI processes are killed, the
  HOME is removed and the lock released, last.

How a turn's end is recorded:
- a result that is not an interrupt: `run_finished` with the result frame whole; a model error
  is `run_finished` with `is_error` true (plus subtype, terminal_reason, api_error_status), as
  the turn did end with a result, usage and cost. The projections show it as failed.
- an interrupt (our cancel, or the CLI's `aborted_*` terminal reason): `run_cancelled`.
- no result at all (the CLI crashed or refused to start, the SDK raised, the lock was lost):
  `run_failed` with the error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import msgspec
from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    ResultMessage,
)

from domain.errors import RunAlreadyActive, RunNotActive, UnknownRun
from domain.events import (
    RUN_TERMINAL_TYPES,
    TOOL_TERMINAL_TYPES,
    Event,
    HeartbeatRecorded,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionEvent,
    ToolCallFailed,
    utc_now,
)
from domain.ports import StartedRun
from infra.agent.config import AgentConfig
from infra.agent.jobs import InProcessJobService, JobService, demo_mcp_server
from infra.agent.policy import deny_output
from infra.agent.recorder import RunRecorder, RunStore
from infra.agent.recovery import recovery_events
from infra.agent.sandbox import SandboxUnavailable, run_sandbox
from infra.agent.scripted_model import ScriptedModel
from infra.agent.transcript import agent_session_id, transcript_lines, write_transcript
from infra.agent.translate import SdkTranslator
from infra.log_context import log_context
from infra.run_lock import LocalRunLock, LockLease, RedisRunLock, RunLock

log = logging.getLogger(__name__)

SCRIPTED_MODEL_NAME = "claude-sonnet-4-5"
# Set in the CLI's environment; its children inherit it, so /proc tells which are a run's.
# Not AGENTLOG_*: nothing of that prefix enters a run's (minimal) environment.
RUN_MARKER = "AGENT_RUN_ID"
# A run's HOME is `<run_home_root>/agentlog-<run id>-<random>`: found again by run id.
_HOME_PREFIX = "agentlog-"
RECOVERY_PREFIX = "recovery:"


@dataclass
class _Run:
    """One turn in flight in this process."""

    session_id: str
    run_id: str
    prompt: str
    lease: LockLease
    start_seq: int
    history: list[RecordedEvent]
    translator: SdkTranslator
    recorder: RunRecorder
    task: asyncio.Task[None] | None = None
    client: ClaudeSDKClient | None = None
    cancel_reason: str | None = None
    failure: str | None = None  # why the run must stop (lock lost, store failed)
    lock_lost: bool = False
    terminal_recorded: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    home: Path | None = None
    stderr: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))


class AgentRunner:
    """Agent turns through claude-agent-sdk; see the module docstring. One per process."""

    def __init__(
        self,
        store: RunStore,
        lock: RunLock,
        config: AgentConfig,
        *,
        base_url: str | None = None,
        jobs: JobService | None = None,
    ) -> None:
        if config.mode == "scripted" and base_url is None:
            raise ValueError("scripted mode needs the scripted model's base_url")
        self.store = store
        self.lock = lock
        self.config = config
        self.base_url = base_url
        self._own_jobs = jobs is None
        self.jobs: JobService = jobs if jobs is not None else InProcessJobService()
        self._runs: dict[str, _Run] = {}
        self._helpers: set[asyncio.Task[Any]] = set()
        self._closing = False
        root = Path(tempfile.gettempdir())
        self.workspace_root = config.workspace_root or root / "agentlog-workspaces"
        self.run_home_root = config.run_home_root or root
        self.sandbox = run_sandbox(
            enabled=config.sandbox, mode=config.mode, base_url=base_url, cli_path=config.cli_path
        )

    # -- the port ------------------------------------------------------------------------------

    async def start(self, session_id: str, prompt: str) -> StartedRun:
        if self._closing:
            raise RuntimeError("the agent runner is shutting down")
        await self.store.head(session_id)  # UnknownSession
        problem = await asyncio.to_thread(self.sandbox.problem)
        if problem is not None:  # refused before anything is written: never unconfined
            raise SandboxUnavailable(problem)
        run_id = "run_" + uuid.uuid4().hex
        lease = await self._acquire(session_id, run_id)
        try:
            history = await self.store.read_session(session_id)
            recovery = recovery_events(history)
            batch: list[Event] = [
                *recovery,
                RunStarted(run_id=run_id, prompt=prompt, agent=self.config.mode),
            ]
            seqs = await self.store.append(session_id, batch)
            await self._clear_abandoned(recovery)
        except BaseException:
            await self._release(lease)
            raise
        now = utc_now()
        history += [
            RecordedEvent(
                session_id=session_id,
                seq=seq,
                position=0,
                time=now,
                event=cast("SessionEvent", event),
            )
            for seq, event in zip(seqs[:-1], recovery, strict=True)
        ]
        run = _Run(
            session_id=session_id,
            run_id=run_id,
            prompt=prompt,
            lease=lease,
            start_seq=seqs[-1],
            history=history,
            translator=SdkTranslator(run_id),
            recorder=RunRecorder(self.store, session_id, run_id),
        )
        run.recorder.on_failure = lambda exc: self._stop(run, f"could not record events: {exc}")
        self._runs[session_id] = run
        with log_context(session_id=session_id, run_id=run_id):  # the run's task logs its ids
            run.task = asyncio.create_task(self._drive(run), name=f"agentlog-run-{run_id}")
        return StartedRun(session_id=session_id, run_id=run_id, offset=seqs[-1] - 1)

    async def cancel(self, session_id: str, run_id: str, reason: str = "cancelled") -> None:
        run = self._runs.get(session_id)
        if run is not None and run.run_id == run_id:
            await self._cancel(run, reason)
            return
        history = await self.store.read_session(session_id)
        state = _run_state(history, run_id)
        if state is None:
            raise UnknownRun(session_id, run_id)
        if state != "running":
            raise RunNotActive(session_id, run_id)
        if await self.lock.holder(session_id) == run_id:
            # Another process drives it: ask it, then wait (bounded) for the run's end.
            await self.lock.request_cancel(session_id, run_id, reason, self.config.lock_ttl_ms)
            await self._wait_for_end(session_id, run_id, self._cancel_timeout())
            return
        await self.recover_abandoned(session_id)
        raise RunNotActive(session_id, run_id)

    async def _acquire(self, session_id: str, run_id: str) -> LockLease:
        """The session's lock for a new run, or RunAlreadyActive naming the holder.

        A run whose terminal event is already in the log still holds the lock for the moment
        its CLI takes to exit (~50 ms): a client that starts the next turn as soon as it sees
        the end waits for that hand-over (bounded) instead of being refused. So does a start
        that meets another process's brief abandoned-run recovery."""
        deadline = time.monotonic() + self.config.handover_seconds
        while True:
            lease = await self.lock.acquire(session_id, run_id, self.config.lock_ttl_ms)
            if lease is not None:
                return lease
            holder = await self.lock.holder(session_id)
            remaining = deadline - time.monotonic()
            if holder is None and remaining > 0:
                continue  # released or expired between the two calls: try again
            if holder is None or remaining <= 0:
                raise RunAlreadyActive(session_id, holder or "unknown")
            if not await self._handing_over(session_id, holder):
                raise RunAlreadyActive(session_id, holder)
            local = self._runs.get(session_id)
            if local is not None and local.run_id == holder:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await local.done.wait()
            else:
                await asyncio.sleep(min(0.05, remaining))  # another process: poll its lock

    async def _handing_over(self, session_id: str, holder: str) -> bool:
        """True if `holder` is on its way out: ended in the log, or a recovery."""
        if holder.startswith(RECOVERY_PREFIX):
            return True
        local = self._runs.get(session_id)
        if local is not None and local.run_id == holder:
            return local.terminal_recorded
        head = await self.store.head(session_id)
        tail = await self.store.read(session_id, after=max(0, head - 200), limit=200)
        return any(
            isinstance(r.event, RUN_TERMINAL_TYPES) and r.event.run_id == holder for r in tail
        )

    @property
    def active_count(self) -> int:
        """Runs this process is driving now."""
        return len(self._runs)

    async def active_run(self, session_id: str) -> str | None:
        run = self._runs.get(session_id)
        if run is not None:
            return run.run_id
        holder = await self.lock.holder(session_id)
        return None if holder is None or holder.startswith(RECOVERY_PREFIX) else holder

    async def close(self) -> None:
        """Server shutdown: cancel every run of this process, then stop the job service."""
        self._closing = True
        runs = list(self._runs.values())
        await asyncio.gather(
            *(self._cancel(run, "server shutdown") for run in runs), return_exceptions=True
        )
        for task in list(self._helpers):
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        if self._own_jobs and isinstance(self.jobs, InProcessJobService):
            await self.jobs.close()
        await self.sandbox.close()

    # -- abandoned runs ------------------------------------------------------------------------

    async def recover_abandoned(self, session_id: str) -> bool:
        """If the log says a run is active but nobody holds the session's lock, record
        `run_abandoned` and end its tool calls. True when something was recorded."""
        if session_id in self._runs:
            return False
        lease = await self.lock.acquire(
            session_id, RECOVERY_PREFIX + uuid.uuid4().hex, self.config.lock_ttl_ms
        )
        if lease is None:
            return False
        try:
            recovery = recovery_events(await self.store.read_session(session_id))
            if recovery:
                await self.store.append(session_id, recovery)
                await self._clear_abandoned(recovery)
            return bool(recovery)
        finally:
            await self._release(lease)

    async def sweep(self, session_ids: Sequence[str]) -> list[str]:
        """Recover every candidate session whose run has no live lock (on startup with
        LocalRunLock, that is every session the log shows running). Returns those recovered."""
        recovered = []
        for session_id in session_ids:
            try:
                if await self.recover_abandoned(session_id):
                    recovered.append(session_id)
            except Exception as exc:  # noqa: BLE001 - one bad session must not stop the sweep
                log.warning("could not recover session %s: %s", session_id, exc)
        return recovered

    async def _clear_abandoned(self, recovery: Sequence[Event]) -> None:
        """After the log records runs abandoned: remove what they left on this host."""
        for event in recovery:
            if isinstance(event, RunAbandoned) and event.run_id is not None:
                await asyncio.to_thread(self._remove_leftovers, event.run_id)

    def _remove_leftovers(self, run_id: str) -> None:
        """End the run's agent processes still alive on this host and remove its HOME.

        Called when a run winds down, and when recovery records a run abandoned: a server
        killed with SIGKILL leaves its CLI running under init and its HOME on disk, and a
        server on the same host with the same HOME root clears both. (Another host finds
        nothing here; what that server left lives on until its own host's next recovery.)
        """
        for pid in agent_process_ids(run_id):
            log.warning("run %s: killing leftover agent process %d", run_id, pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for home in self.run_home_root.glob(f"{_HOME_PREFIX}{run_id}-*"):
            shutil.rmtree(home, ignore_errors=True)
        self.sandbox.forget(run_id)

    # -- introspection (tests, diagnostics) ----------------------------------------------------

    def agent_process_ids(self, run_id: str) -> list[int]:
        """Processes (the CLI and its children) started for `run_id` that are still alive."""
        return agent_process_ids(run_id)

    # -- the turn ------------------------------------------------------------------------------

    async def _drive(self, run: _Run) -> None:
        heartbeat = asyncio.create_task(
            self._heartbeat(run), name=f"agentlog-heartbeat-{run.run_id}"
        )
        error: BaseException | None = None
        try:
            cwd, resume = await asyncio.to_thread(self._prepare_home, run)
            options = self._options(run, cwd, resume)
            options = await self.sandbox.confine(options, run.run_id, Path(cwd), run.home)
            if run.cancel_reason is None and run.failure is None:
                async with ClaudeSDKClient(options) as client:
                    run.client = client
                    try:
                        if run.cancel_reason is None and run.failure is None:
                            await client.query(run.prompt)
                            error = await self._read_until_end(run, client)
                    finally:
                        run.client = None
        except Exception as exc:  # noqa: BLE001 - every failure becomes the run's terminal event
            error = error or exc
        except asyncio.CancelledError:
            # Only close() cancels this task, as a last resort; record, then let it go.
            run.cancel_reason = run.cancel_reason or "server shutdown"
            self._safety_net(run, None)
            await self._wind_down(run, heartbeat)
            raise
        if run.lock_lost:
            await self._reconcile(run)
        self._safety_net(run, error)
        await self._wind_down(run, heartbeat)

    async def _reconcile(self, run: _Run) -> None:
        """After losing the lock, another process may have recorded this run as abandoned and
        ended its tool calls: take those ends as given, so nothing ends twice."""
        await run.recorder.flush()
        try:
            events = await self.store.read_session(run.session_id, after=run.start_seq)
        except Exception as exc:  # noqa: BLE001 - the safety net then records as usual
            log.warning("run %s: could not read its own events: %s", run.run_id, exc)
            return
        for recorded in events:
            event = recorded.event
            if isinstance(event, TOOL_TERMINAL_TYPES):
                run.translator.mark_resolved(event.tool_call_id)
            elif isinstance(event, RUN_TERMINAL_TYPES) and event.run_id == run.run_id:
                run.terminal_recorded = True

    async def _read_until_end(self, run: _Run, client: ClaudeSDKClient) -> BaseException | None:
        """Read the turn until its result, or until the run must stop. Returns the error that
        ended the stream, if any."""
        reader = asyncio.create_task(self._read(run, client), name=f"agentlog-reader-{run.run_id}")
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

    async def _read(self, run: _Run, client: ClaudeSDKClient) -> None:
        translator = run.translator
        async for message in client.receive_response():
            events = translator.translate(message)
            if run.cancel_reason is not None:
                # After our interrupt the CLI fails the running calls ("The user doesn't want
                # to proceed..."): they were interrupted, not failing by themselves.
                events = [_as_interrupted(e) for e in events]
            if isinstance(message, ResultMessage):
                events = self._result_events(run, events)
            run.recorder.record(events)

    def _result_events(self, run: _Run, events: list[Event]) -> list[Event]:
        """The result's events with the run's terminal decided (see the module docstring)."""
        outcome = run.translator.outcome
        body = [e for e in events if not isinstance(e, RunFinished)]
        finished = [e for e in events if isinstance(e, RunFinished)]
        cancelled = outcome is not None and (
            outcome.cancelled or (run.cancel_reason is not None and outcome.is_error)
        )
        if cancelled:
            reason = run.cancel_reason or "interrupted"
            body += run.translator.interrupt_pending(f"interrupted: {reason}")
            body.append(RunCancelled(run_id=run.run_id, reason=reason))
        else:
            body += run.translator.interrupt_pending(
                "interrupted: the turn ended before the tool reported back"
            )
            body += finished
        run.terminal_recorded = True
        return body

    def _safety_net(self, run: _Run, error: BaseException | None) -> None:
        """Every open tool call and the run itself get their terminal events, once."""
        if run.terminal_recorded:
            if error is not None:
                log.debug("run %s: after its result: %r", run.run_id, error)
            return
        events = run.translator.finish()
        if run.cancel_reason is not None and run.failure is None:
            events += run.translator.interrupt_pending(f"interrupted: {run.cancel_reason}")
            events.append(RunCancelled(run_id=run.run_id, reason=run.cancel_reason))
        else:
            why = run.failure or _describe(error, run.stderr)
            events += run.translator.interrupt_pending(f"interrupted: {why}")
            events.append(
                RunFailed(
                    run_id=run.run_id, error=why, terminal_reason=_terminal_reason(error, run)
                )
            )
        run.recorder.record(events)
        run.terminal_recorded = True

    async def _wind_down(self, run: _Run, heartbeat: asyncio.Task[None]) -> None:
        """Stop the heartbeat, make the events durable, remove what the run left, release."""
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        try:
            await run.recorder.close()
        except Exception as exc:  # noqa: BLE001
            log.error("run %s: recorder: %s", run.run_id, exc)
        await asyncio.to_thread(self._remove_leftovers, run.run_id)
        if self._runs.get(run.session_id) is run:
            del self._runs[run.session_id]
        await self._release(run.lease)  # last: the next run must find everything settled
        run.done.set()

    def _prepare_home(self, run: _Run) -> tuple[str, dict[str, str]]:
        """The run's working directory and HOME, with the session's earlier runs written as
        the CLI's transcript (file I/O: runs in a thread). Returns (cwd, resume option)."""
        workspace = self.workspace_root / _directory_name(run.session_id)
        workspace.mkdir(parents=True, exist_ok=True)
        cwd = str(workspace.resolve())
        self.run_home_root.mkdir(parents=True, exist_ok=True)
        run.home = Path(
            tempfile.mkdtemp(prefix=f"{_HOME_PREFIX}{run.run_id}-", dir=self.run_home_root)
        )
        agent_session = agent_session_id(run.session_id)
        lines = transcript_lines(
            run.history, session_id=run.session_id, agent_session=agent_session, cwd=cwd
        )
        run.history = []  # not needed any more; runs can be long
        if not lines:
            return cwd, {"session_id": agent_session}
        write_transcript(run.home, cwd, agent_session, lines)
        return cwd, {"resume": agent_session}

    def _options(self, run: _Run, cwd: str, resume: dict[str, str]) -> ClaudeAgentOptions:
        assert run.home is not None
        env = {
            "HOME": str(run.home),
            # No update checks, telemetry or error reports from the CLI.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            RUN_MARKER: run.run_id,
            **self.config.extra_env,
        }
        model = self.config.model
        if self.config.mode == "scripted":
            assert self.base_url is not None
            env["ANTHROPIC_BASE_URL"] = self.base_url
            env["ANTHROPIC_API_KEY"] = "sk-ant-scripted-model"
            model = model or SCRIPTED_MODEL_NAME
        return ClaudeAgentOptions(
            env=env,
            cwd=cwd,
            setting_sources=[],
            include_partial_messages=self.config.include_partial_messages,
            model=model,
            allowed_tools=list(self.config.agent_tools),
            disallowed_tools=sorted(self.config.disabled_tools),
            mcp_servers={"demo": demo_mcp_server(self.jobs, self.config.poll)},
            hooks=self._hooks(run),
            stderr=run.stderr.append,
            cli_path=self.config.cli_path,
            resume=resume.get("resume"),
            session_id=resume.get("session_id"),
        )

    def _hooks(self, run: _Run) -> dict[Any, list[HookMatcher]]:
        translator, recorder, policy = run.translator, run.recorder, self.config.policy

        # Each callback decides and queues in one step (no await in between), so whichever
        # of a hook and the transcript reports a call's end first is the one recorded.
        async def pre_tool_use(
            data: HookInput, tool_use_id: str | None, context: HookContext
        ) -> HookJSONOutput:
            hook = dict(data)
            name = str(hook.get("tool_name", ""))
            tool_input = hook.get("tool_input")
            reason = self.config.not_enabled(name) or policy.decide(
                name, tool_input if isinstance(tool_input, dict) else None
            )
            if reason is None:
                return {}
            call_id = tool_use_id or hook.get("tool_use_id")
            if isinstance(call_id, str):
                recorder.record(
                    translator.denied(call_id, reason, tool_name=name, tool_input=tool_input)
                )
            return deny_output(reason)  # type: ignore[return-value]

        async def post_tool_use(
            data: HookInput, tool_use_id: str | None, context: HookContext
        ) -> HookJSONOutput:
            recorder.record(translator.post_tool_use(_with_id(data, tool_use_id)))
            return {}

        async def post_tool_use_failure(
            data: HookInput, tool_use_id: str | None, context: HookContext
        ) -> HookJSONOutput:
            recorder.record(translator.post_tool_use_failure(_with_id(data, tool_use_id)))
            return {}

        return {
            "PreToolUse": [HookMatcher(hooks=[pre_tool_use])],
            "PostToolUse": [HookMatcher(hooks=[post_tool_use])],
            "PostToolUseFailure": [HookMatcher(hooks=[post_tool_use_failure])],
        }

    async def _heartbeat(self, run: _Run) -> None:
        """Heartbeats and lock refreshes on a timer, and cancels asked by other processes."""
        interval = self.config.heartbeat_seconds
        ttl = self.config.lock_ttl_seconds
        tick = min(interval, self.config.cancel_poll_seconds)
        next_beat = time.monotonic() + interval
        refreshed_at = time.monotonic()
        while True:
            await asyncio.sleep(max(0.0, min(tick, next_beat - time.monotonic())))
            now = time.monotonic()
            if now >= next_beat:
                next_beat = max(next_beat + interval, now + interval / 2)
                if not run.terminal_recorded:  # after it, only the teardown keeps the lock
                    run.recorder.record([HeartbeatRecorded(run_id=run.run_id)])
                try:
                    held: bool | None = await self.lock.refresh(run.lease)
                except Exception as exc:  # noqa: BLE001 - a blip; the TTL decides
                    log.warning("run %s: could not refresh its lock: %s", run.run_id, exc)
                    held = None
                if held:
                    refreshed_at = now
                elif held is False or now - refreshed_at >= ttl:
                    run.lock_lost = True
                    self._stop(run, "the run lost its session lock")
                    return
            try:
                reason = await self.lock.cancel_requested(run.lease)
            except Exception as exc:  # noqa: BLE001
                log.debug("run %s: cancel poll failed: %s", run.run_id, exc)
                reason = None
            if reason:
                self._spawn(self._cancel(run, reason))
                return

    # -- stopping ------------------------------------------------------------------------------

    async def _cancel(self, run: _Run, reason: str) -> None:
        """Interrupt the turn, give it `cancel_grace_seconds` to end by itself (the CLI then
        reports the interrupted tool calls), then tear it down; return once it is gone."""
        if run.terminal_recorded and run.cancel_reason is None:
            await run.done.wait()
            raise RunNotActive(run.session_id, run.run_id)
        if run.cancel_reason is None:
            run.cancel_reason = reason
            client = run.client
            if client is not None:
                try:
                    async with asyncio.timeout(5):
                        await client.interrupt()
                except Exception as exc:  # noqa: BLE001 - the teardown below still ends it
                    log.info("run %s: interrupt failed: %r", run.run_id, exc)
                    run.stop.set()
            else:
                run.stop.set()
        try:
            async with asyncio.timeout(self.config.cancel_grace_seconds):
                await run.done.wait()
            return
        except TimeoutError:
            run.stop.set()
        try:
            async with asyncio.timeout(30):  # the SDK's own teardown is bounded at ~20 s
                await run.done.wait()
            return
        except TimeoutError:
            pass
        if run.task is not None and not run.task.done():
            log.error("run %s: teardown hung; cancelling its task", run.run_id)
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task

    def _stop(self, run: _Run, why: str) -> None:
        """End the run as failed (lock lost, events cannot be recorded)."""
        if run.failure is None:
            run.failure = why
        log.error("run %s: stopping: %s", run.run_id, why)
        run.stop.set()

    def _cancel_timeout(self) -> float:
        return self.config.cancel_grace_seconds + 30 + 2 * self.config.cancel_poll_seconds

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)
        task.add_done_callback(_log_failure)

    async def _release(self, lease: LockLease) -> None:
        try:
            if not await self.lock.release(lease):
                log.warning("run lock of %s was no longer ours to release", lease.session_id)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("could not release the run lock of %s: %s", lease.session_id, exc)

    # -- reading the log -----------------------------------------------------------------------

    async def _wait_for_end(self, session_id: str, run_id: str, timeout: float) -> bool:
        """Wait until the log shows `run_id` ended; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        async with self.store.subscribe(session_id) as wakeup:
            while True:
                if _run_state(await self.store.read_session(session_id), run_id) != "running":
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                await wakeup.wait(min(remaining, 1.0))


# -- helpers ---------------------------------------------------------------------------------


def _as_interrupted(event: Event) -> Event:
    if isinstance(event, ToolCallFailed) and not event.interrupted:
        return msgspec.structs.replace(event, interrupted=True)
    return event


def _with_id(data: HookInput, tool_use_id: str | None) -> dict[str, Any]:
    hook = dict(data)
    if tool_use_id and not hook.get("tool_use_id"):
        hook["tool_use_id"] = tool_use_id
    return hook


def _run_state(events: Sequence[RecordedEvent], run_id: str) -> str | None:
    """None if the log has no such run, "ended" if it has a terminal event, else "running"."""
    seen = False
    for recorded in events:
        event = recorded.event
        if event.run_id != run_id:
            continue
        if isinstance(event, RunStarted):
            seen = True
        elif isinstance(event, RUN_TERMINAL_TYPES):
            return "ended"
    return "running" if seen else None


def _describe(error: BaseException | None, stderr: Sequence[str]) -> str:
    if error is None:
        return "the agent stopped without a result"
    text = str(error).strip() or type(error).__name__
    tail = [line for line in stderr if line.strip()][-3:]
    if tail and "Check stderr output" in text:
        text = text.replace("Check stderr output for details", " | ".join(tail))
    return f"{type(error).__name__}: {text}"


def _terminal_reason(error: BaseException | None, run: _Run) -> str:
    if run.failure is not None:
        return "runner_stopped"
    if error is None:
        return "no_result"
    exit_code = getattr(error, "exit_code", None)
    return "agent_crashed" if isinstance(exit_code, int) and exit_code < 0 else "agent_error"


def _directory_name(session_id: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", session_id)[:80]
    return f"{readable}-{hashlib.sha256(session_id.encode()).hexdigest()[:12]}"


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("agent runner helper failed: %r", task.exception())


def agent_process_ids(run_id: str) -> list[int]:
    """Live processes whose environment carries this run's marker (Linux /proc; [] elsewhere)."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in variables and state != b"Z":
            found.append(int(entry))
    return found


@asynccontextmanager
async def open_agent_runner(
    store: RunStore,
    *,
    config: AgentConfig | None = None,
    redis_url: str | None = None,
    base_url: str | None = None,
    jobs: JobService | None = None,
    **overrides: Any,
) -> AsyncIterator[AgentRunner]:
    """An AgentRunner with its lock (Redis when `redis_url`, else in-process) and, in scripted
    mode without `base_url`, a ScriptedModel on loopback; everything closes on exit, runs
    first (cancelled as "server shutdown"). `overrides` replace fields of `config`."""
    config = replace(config or AgentConfig(), **overrides)
    async with contextlib.AsyncExitStack() as stack:
        lock: RunLock
        if redis_url:
            lock = await RedisRunLock(redis_url).open()
        else:
            lock = LocalRunLock()
        stack.push_async_callback(lock.close)
        if config.mode == "scripted" and base_url is None:
            model = ScriptedModel(shell_command=config.scripted_shell_command)
            base_url = await model.start()
            stack.push_async_callback(model.close)
        runner = AgentRunner(store, lock, config, base_url=base_url, jobs=jobs)
        stack.push_async_callback(runner.close)
        yield runner
