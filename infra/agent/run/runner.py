"""The agent runner: one Claude turn per run, driven through the SDK, recorded as it happens.

`AgentRunner` implements `agentlog.domain.ports.agent_runs.AgentRuns` and composes the run's parts,
each in its
own module:

- the lease (`run_lease.py`): `start` takes the session's run lock (refused: RunAlreadyActive
  with the holder's run id), and a task keeps it on its own short cycle; a lease that is lost
  stops the run. The same task picks up a cancel asked by another process.
- recovery (`abandoned.py`, `recovery.py`): a run its dead owner left behind is recorded as
  abandoned before `run_started`; the sweeper does the same for idle sessions.
- the run's place on disk (`run_home.py`): the session's workspace and a temporary HOME.
- the conversation (`agent_resume.py`, `session_store.py`): the run resumes its agent session
  (the one its `run_started` records) from the CLI's own transcript in agentlog's database,
  through a `LogSessionStore` bound to the session, and the CLI's new lines are mirrored back
  as it writes them; so any instance continues the conversation. A session recorded before
  is converted from its events once; a transcript behind the log is repaired first.
- the SDK (`sdk_options.py`, `hooks.py`, `driver.py`): the options and hooks of the run's
  CLI, and the turn itself; heartbeats come from their own task.
- the record (`recorder.py`): every event is queued in order and appended by one writer.

Winding down, whatever ended the turn: the safety net records the missing terminal events,
the events are flushed, leftover CLI processes are killed (`reaping.py`), the HOME is removed
and the lease released, last. At shutdown with crash continuation on, a run is handed over
instead (`_hand_off`): no terminal event, the lease released, the turn left open for the crash
continuation of another instance or of this one restarted.

Every start is an entry point (`_start_prompt`, `_start_or_queue`, `_start_queued`,
`_start_after_approvals`, `_start_after_crash`) that checks what it can before the lease
(`_prepare`) and decides under it what starts, and one core (`_start_under_lease`) that reads
the session under the lease, appends the turn's `run_started` with whatever closes or answers
before it, and starts driving it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient

from agentlog.domain.errors import (
    ApprovalPending,
    RunAlreadyActive,
    RunFenced,
    RunNotActive,
    UnknownRun,
)
from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    TOOL_TERMINAL_TYPES,
    AttachedFile,
    ConversationRewound,
    EgressRefused,
    Event,
    PromptQueued,
    QueueCleared,
    RecordedEvent,
    RunStarted,
    SessionCreated,
    SteeringDelivered,
    ToolCallRefused,
)
from agentlog.domain.ports.agent_runs import QueuedRun, Rewind, StartedRun
from agentlog.domain.ports.event_store import RunFence, TurnDue
from agentlog.domain.ports.run_lock import RunLock
from agentlog.domain.rules.approvals import Approval, Approvals, approvals
from agentlog.domain.rules.crash_continuation import (
    CONTINUE_AFTER_CRASH_PROMPT,
    CrashContinuation,
    crash_continuation,
)
from agentlog.domain.rules.prompt_queue import (
    PromptQueue,
    QueuedPrompt,
    decide_send,
    next_prompt,
    prompt_queue,
    queue_from_after,
    queue_start,
)
from agentlog.infra.agent.agents.catalog import (
    AgentCatalog,
    AgentOptionsFailed,
    HostedAgent,
    load_catalog,
)
from agentlog.infra.agent.agents.context import AgentContext
from agentlog.infra.agent.agents.fingerprint import agent_fingerprint
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.recovery.abandoned_runs import AbandonedRuns
from agentlog.infra.agent.recovery.leftovers import (
    agent_process_ids,
    note_resume_directory,
    remove_leftovers,
)
from agentlog.infra.agent.recovery.recovery_events import recovery_events
from agentlog.infra.agent.run.approval_gate import ApprovalGate
from agentlog.infra.agent.run.driver import (
    RunInFlight,
    drive_turn,
    heartbeats,
    safety_net,
    steering_message,
    steering_uuid,
)
from agentlog.infra.agent.run.home import prepare_run_home
from agentlog.infra.agent.run.hooks import recorded_permission, run_hooks
from agentlog.infra.agent.run.jobs import InProcessJobService, JobService, demo_mcp_server
from agentlog.infra.agent.run.lease import RECOVERY_PREFIX, acquire_for_run, keep_lease, release
from agentlog.infra.agent.run.metered import run_meter
from agentlog.infra.agent.run.prompt_content import prompt_content
from agentlog.infra.agent.run.recorder import RunRecorder, RunStore
from agentlog.infra.agent.run.rewind_head import rewind_expected_seq
from agentlog.infra.agent.run.tool_permits import ToolPermits, guarded_servers
from agentlog.infra.agent.sandbox.bubblewrap import (
    SandboxUnavailable,
    python_folders,
    run_sandbox,
)
from agentlog.infra.agent.sandbox.egress_proxy import EgressProxy
from agentlog.infra.agent.sdk import team_options
from agentlog.infra.agent.sdk.options import agent_options
from agentlog.infra.agent.sdk.resume_off_loop import resumed_off_loop
from agentlog.infra.agent.sdk.session_store import LogSessionStore
from agentlog.infra.agent.sdk.translate import SdkTranslator
from agentlog.infra.agent.transcripts.branching import agent_session_of_branch, latest_agent_session
from agentlog.infra.agent.transcripts.resume import ready_transcript
from agentlog.infra.log_context import log_context
from agentlog.infra.sessions.approval_answers import (
    ApprovalAnswer,
    approvals_since,
    latest_approvals,
)
from agentlog.infra.store.deployment import default_workspace_root, deployment_key
from agentlog.infra.store.opening import open_run_lock
from agentlog.infra.store.run_reads import open_run_events

__all__ = ["AgentRunner", "agent_process_ids", "open_agent_runner"]

log = logging.getLogger(__name__)

# A send that meets a run as it ends tries again: queued behind it (fenced on it) or started
# after its hand-over. Each attempt waits on a change of the session, so few are ever needed.
_SEND_ATTEMPTS = 100

# How long a run that has ended may take to let go of its CLI (the SDK's own teardown is
# bounded at ~20 s): what a start waits for a finishing holder's lease.
_TEARDOWN_SECONDS = 30.0
# How long the sweep waits before it looks again at a session due a look whose look failed.
_DUE_RETRY_SECONDS = 60.0


class _NoSlot:
    """A turn that would start but finds this process at AGENTLOG_MAX_ACTIVE_RUNS."""


_NO_SLOT = _NoSlot()


@dataclass(frozen=True)
class _StartOutcome:
    """What a start did: the run it started (if any) and the prompt it queued (if any)."""

    started: StartedRun | None = None
    queued: QueuedRun | None = None


@dataclass(frozen=True)
class _Prepared:
    """What a start checked before taking the lease (`_prepare`)."""

    agent: HostedAgent
    metadata: dict[str, Any]
    content: str | list[dict[str, Any]] | None


@dataclass(frozen=True)
class _SessionNow:
    """The session as a start reads it under the lease (`_read_under_lease`)."""

    # The head an answer was decided on (None without an answer).
    decided_on: int | None
    approvals_from: int | None
    # The answer's response, recorded in the same append as the run's start.
    answering: list[Event]
    waiting: list[Approval]
    decided: list[Approval]
    open_run: Sequence[RecordedEvent]
    queue: PromptQueue


@dataclass(frozen=True)
class _Turn:
    """What an entry point decided to start (`_start_under_lease` starts it)."""

    prompt: str
    user_message_id: str | None = None
    files: Sequence[AttachedFile] = ()
    # The queued prompt this run answers: its prompt, message id and files replace the above.
    answered: QueuedPrompt | None = None
    # A prompt sent now that queues behind the one answered, in the same append.
    newly_queued: PromptQueued | None = None
    # A continuation after approvals: no prompt, the CLI settles its deferred calls.
    continuation: bool = False
    continues_run_id: str | None = None
    crash: CrashContinuation | None = None


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
        agents: AgentCatalog | None = None,
    ) -> None:
        if config.mode == "scripted" and base_url is None:
            raise ValueError("scripted mode needs the scripted model's base_url")
        if agents is None and config.agents:
            raise ValueError("the configured agents must be loaded first (load_catalog)")
        # The agents sessions may use, each checked at start (agents/catalog.py).
        self.agents = agents or AgentCatalog()
        self.store = store
        self.lock = lock
        self.config = config
        self.base_url = base_url
        self._own_jobs = jobs is None
        self.jobs: JobService = jobs if jobs is not None else InProcessJobService()
        self._runs: dict[str, RunInFlight] = {}
        self._helpers: set[asyncio.Task[Any]] = set()
        self._closing = False
        # Batches of events that had to wait for the store (it failed, then they were retried).
        self.delayed_batches = 0
        # Turns this process continued after their server died.
        self.continued_after_crash = 0
        # Turns this process left open at shutdown for another to continue (`_hand_off`).
        self.handed_off = 0
        # AGENTLOG_MAX_ACTIVE_RUNS for the runs this process starts by itself (`limit_runs`).
        self._max_active: int | None = None
        self._starting_elsewhere: Callable[[], int] = lambda: 0
        self._starting_here = 0
        # Sessions whose turn waits for a free slot to go on (a crash continuation, or the
        # next turn after a recovered run), oldest first: started as runs end.
        self._waiting_for_slot: dict[str, None] = {}
        # Sessions due a look whose last look failed: not looked at again before this time.
        self._due_retry: dict[str, float] = {}
        root = Path(tempfile.gettempdir())
        self.workspace_root = config.workspace_root or root / "agentlog-workspaces"
        self.run_home_root = config.run_home_root or root
        self.abandoned = AbandonedRuns(
            store,
            lock,
            ttl_ms=config.lock_ttl_ms,
            run_home_root=self.run_home_root,
            runs_here=lambda session_id: session_id in self._runs,
        )
        self.sandbox = run_sandbox(
            enabled=config.sandbox,
            mode=config.mode,
            base_url=base_url,
            cli_path=config.cli_path,
            limits=config.run_limits,
        )
        self.transcripts = LogSessionStore(store)

    # -- the port ------------------------------------------------------------------------------

    async def start(
        self,
        session_id: str,
        prompt: str,
        rewind: Rewind | None = None,
        *,
        user_message_id: str | None = None,
        files: Sequence[AttachedFile] = (),
    ) -> StartedRun:
        """A new turn with `prompt`; refused (ApprovalPending) while an approval waits. With
        `rewind`, the turn answers from `rewind.to_seq` on a new branch
        (agentlog.domain.rules.branches);
        with `rewind.expected_head`, only if the log is still as planned (rewind_head.py).
        `user_message_id`: the client's id for the prompt's message (on `run_started`)."""
        outcome = await self._start_prompt(
            session_id, prompt, rewind=rewind, user_message_id=user_message_id, files=files
        )
        assert outcome.started is not None
        return outcome.started

    async def send(
        self,
        session_id: str,
        prompt: str,
        *,
        user_message_id: str | None = None,
        interrupt: bool = False,
        steer: bool = False,
        files: Sequence[AttachedFile] = (),
    ) -> StartedRun | QueuedRun:
        """`prompt`'s turn now when the session is idle, else `prompt_queued` (QueuedRun):
        behind the active run (the append is fenced on it, so it never lands after that run
        ended: then it is tried again), or behind a waiting approval or earlier queued
        prompts (decided and appended under the lease, like a start). `interrupt`: queued
        first in line, and the active run is cancelled so it goes next. `steer`: queued, and
        handed to the active run's agent at once when this process drives it (the CLI adds
        it to the turn at its next step boundary; the run records `steering_delivered` there)."""
        for _attempt in range(_SEND_ATTEMPTS):
            holder = await self.active_run(session_id)
            if holder is not None:
                if steer:
                    steered = await self._steer(session_id, holder, prompt, user_message_id)
                    if steered is not None:
                        return steered
                queued = await self._queue_behind(
                    session_id, holder, prompt, user_message_id, interrupt, files=files
                )
                if queued is not None:
                    if interrupt:
                        # The queue is in the log: the run's end (whatever ends it) starts it.
                        with contextlib.suppress(RunNotActive, UnknownRun):
                            await self.cancel(session_id, holder, "interrupted")
                    return queued
            try:
                outcome = await self._start_or_queue(
                    session_id,
                    prompt,
                    user_message_id=user_message_id,
                    interrupt=interrupt,
                    files=files,
                )
            except RunAlreadyActive:
                # A run started between our look and our lease: queue behind it next time.
                await asyncio.sleep(0.01)
                continue
            if outcome.queued is not None:
                return outcome.queued
            assert outcome.started is not None
            return outcome.started
        raise RunAlreadyActive(session_id, await self.active_run(session_id) or "unknown")

    async def _steer(
        self, session_id: str, run_id: str, prompt: str, user_message_id: str | None
    ) -> QueuedRun | None:
        """Queue `prompt` as steering behind `run_id` and write it to the run's CLI; None when
        the run is not one this process can still steer (the caller queues it plainly)."""
        run = self._runs.get(session_id)
        if run is None or run.run_id != run_id or run.stopping or run.terminal_recorded:
            return None
        if run.client is None:
            return None
        queued = await self._queue_behind(
            session_id, run_id, prompt, user_message_id, interrupt=False, steer=True
        )
        client = run.client
        if queued is None or client is None or run.terminal_recorded:
            return queued  # still queued: a turn of its own once the run ended
        marker = steering_uuid(run_id, queued.seq)
        run.steers[marker] = SteeringDelivered(
            run_id=run_id, queued_seq=queued.seq, prompt=prompt, user_message_id=user_message_id
        )
        try:
            await client.query(steering_message(prompt, marker))
        except Exception as exc:  # noqa: BLE001 - it stays queued: a turn of its own
            log.info("run %s: could not hand over a steering prompt: %r", run_id, exc)
            run.steers.pop(marker, None)
            return queued
        return msgspec.structs.replace(queued, steered=True)

    async def _queue_behind(
        self,
        session_id: str,
        run_id: str,
        prompt: str,
        user_message_id: str | None,
        interrupt: bool,
        *,
        steer: bool = False,
        files: Sequence[AttachedFile] = (),
    ) -> QueuedRun | None:
        """`prompt_queued`, appended only while `run_id` is the session's open run (fenced):
        its end then finds it. None when that run has ended (or not started yet)."""
        indexed = await self.store.run(session_id, run_id)
        if indexed is None or indexed.ended_seq is not None:
            return None
        event = PromptQueued(
            prompt=prompt,
            user_message_id=user_message_id,
            interrupt=interrupt,
            steer=steer,
            files=list(files),
        )
        try:
            [seq] = await self.store.append(
                session_id, [event], fence=RunFence(run_id=run_id, token=indexed.started_seq)
            )
        except RunFenced:
            return None
        queue = await self.prompt_queue(session_id)
        return QueuedRun(
            session_id=session_id,
            seq=seq,
            position=queue.position(seq) or 1,
            behind_run_id=run_id,
        )

    async def prompt_queue(self, session_id: str) -> PromptQueue:
        """The prompts waiting in the session's queue, read from where it can begin (the
        latest run's `queue_from`), not from the session's start."""
        latest = await self.store.current_run(session_id)
        if latest is None:
            return prompt_queue(await self.store.read_session(session_id))
        [recorded] = await self.store.read(session_id, after=latest.started_seq - 1, limit=1)
        started = recorded.event if isinstance(recorded.event, RunStarted) else None
        start = queue_start(latest.started_seq, started)
        return prompt_queue(await self.store.read_session(session_id, after=start - 1))

    async def clear_queue(self, session_id: str, reason: str = "stopped") -> int:
        """Drop every prompt waiting in the queue now (`queue_cleared`); how many. Prompts
        sent after it wait as usual."""
        queue = await self.prompt_queue(session_id)
        if not queue.waiting:
            return 0
        through = max(q.seq for q in queue.waiting)
        await self.store.append(session_id, [QueueCleared(through_seq=through, reason=reason)])
        return len(queue.waiting)

    async def start_stranded_queue(self, session_id: str) -> StartedRun | None:
        """The oldest queued prompt's turn when prompts wait and nothing runs: what a
        graceful shutdown (its runs cancelled, no next turn started) or a crash between a
        run's end and the next turn's start leaves. None when nothing was started; a failure
        to start is logged, not raised (the caller only looks)."""
        if not (await self.prompt_queue(session_id)).waiting:
            return None
        try:
            return await self.start_next_queued(session_id)
        except Exception as exc:  # noqa: BLE001 - the next send, reconnect or sweep retries
            log.info("session %s: the queued turn did not start: %r", session_id, exc)
            return None

    async def start_next_queued(self, session_id: str) -> StartedRun | None:
        """The oldest queued prompt's turn, when no run is active and no approval waits; None
        when there is nothing to start. RunAlreadyActive when a run holds the lease (its end
        starts the queue)."""
        # Nothing queued is the common answer (asked after every run): found without the
        # lease, so a start arriving just after a run's end is not refused (409) by this look.
        if not (await self.prompt_queue(session_id)).waiting:
            return None
        outcome = await self._start_queued(session_id)
        return outcome.started

    async def continue_after_approval(
        self, session_id: str, answer: ApprovalAnswer | None = None
    ) -> StartedRun | None:
        """A turn without a prompt that resumes the agent session, so the CLI asks again for
        the calls it deferred and the hook finds their answers in the log. None when nothing
        is decided yet, or an approval still waits (found without taking the lease); else
        RunAlreadyActive when a run is active (it finds the answer itself).

        With `answer`, it is recorded in the same append as the continuation's `run_started`,
        under the lease: whoever dies when, the log never holds an answer without the run
        that acts on it (an open run, which the sweeper recovers and continues). When no run
        starts (None, RunAlreadyActive) nothing is written: the caller records the answer."""
        outcome = await self._start_after_approvals(session_id, answer)
        return outcome.started

    async def continue_after_answer(self, session_id: str) -> StartedRun | None:
        """After an answer was recorded alone because a run held the lease: the continuation,
        started here when that run has ended meanwhile (exactly once whoever else tries: the
        start is decided under the lease). None when nothing is to continue, or when a run
        still holds the lease now: that run looks for answers after it releases, so after this
        answer was written, and continues the turn itself.

        This closes the window where the holder released and looked before the answer was
        written: nobody else looks again. A holder that has ended in the log but still holds
        the lease (its CLI exiting, or its server dead) is waited for, bounded by the SDK's
        teardown plus one lease TTL (a dead holder's lease has expired by then)."""
        deadline = time.monotonic() + _TEARDOWN_SECONDS + self.config.lock_ttl_seconds
        while not self._closing:  # shutting down: the answer is written, the 200 stands
            try:
                return await self.continue_after_approval(session_id)
            except RunAlreadyActive as refused:
                holder = refused.run_id
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # It still holds after the answer was written: its own look comes later.
                return None
            # "unknown": released as the lease was asked for; a recovery lease is brief.
            passing = holder == "unknown" or holder.startswith(RECOVERY_PREFIX)
            if not passing and not await self._handing_over(session_id, holder):
                return None  # a live run: it finds the answer itself, or at its end
            if not await self._wait_for_local(session_id, holder, remaining):
                await asyncio.sleep(min(0.05, remaining))  # another process: poll its lease
        return None

    async def _prepare(
        self,
        session_id: str,
        prompt: str,
        files: Sequence[AttachedFile] = (),
        rewind: Rewind | None = None,
    ) -> _Prepared:
        """What every start checks before it takes the lease, with nothing written: the
        session exists (UnknownSession), the rewind fits its log, the sandbox works, this
        server hosts the session's agent (UnknownAgent), and the prompt's files are the
        session's."""
        if self._closing:
            raise RuntimeError("the agent runner is shutting down")
        head = await self.store.head(session_id)  # UnknownSession
        if rewind is not None and not 1 <= rewind.to_seq <= head:
            raise ValueError(f"cannot rewind to seq {rewind.to_seq}: the log holds 1..{head}")
        problem = await asyncio.to_thread(self.sandbox.problem)
        if problem is not None:  # refused before anything is written: never unconfined
            raise SandboxUnavailable(problem)
        # The session's agent, as its first event names it: refused (UnknownAgent) before
        # anything is written when this server does not host it.
        agent, metadata = await self._session_agent(session_id)
        # Read before anything is written: a file the session does not hold refuses the start.
        content = await prompt_content(self.store.backend.attachments(), session_id, prompt, files)
        return _Prepared(agent=agent, metadata=metadata, content=content)

    # -- the entry points: each decides, under the lease, what (if anything) starts -----------

    async def _start_prompt(
        self,
        session_id: str,
        prompt: str,
        *,
        rewind: Rewind | None,
        user_message_id: str | None,
        files: Sequence[AttachedFile],
    ) -> _StartOutcome:
        """`prompt`'s turn; ApprovalPending while an approval waits."""
        prepared = await self._prepare(session_id, prompt, files, rewind)

        async def decide(now: _SessionNow) -> _Turn | _StartOutcome:
            if now.waiting:
                raise ApprovalPending(session_id, [a.request.approval_id for a in now.waiting])
            return _Turn(prompt=prompt, user_message_id=user_message_id, files=files)

        return await self._start_under_lease(session_id, prepared, decide, rewind=rewind)

    async def _start_or_queue(
        self,
        session_id: str,
        prompt: str,
        *,
        user_message_id: str | None,
        interrupt: bool,
        files: Sequence[AttachedFile],
    ) -> _StartOutcome:
        """`prompt`'s turn, or `prompt` queued when an approval or earlier queued prompts
        wait (domain/rules/prompt_queue.py): then the oldest queued prompt may start."""
        prepared = await self._prepare(session_id, prompt, files)

        async def decide(now: _SessionNow) -> _Turn | _StartOutcome:
            decision = decide_send(
                approvals_waiting=bool(now.waiting), queued=len(now.queue.waiting)
            )
            if decision == "start":
                return _Turn(prompt=prompt, user_message_id=user_message_id, files=files)
            queued = PromptQueued(
                prompt=prompt,
                user_message_id=user_message_id,
                interrupt=interrupt,
                files=list(files),
            )
            if decision == "queue":
                [seq] = await self.store.append(session_id, [queued])
                position = len(now.queue.waiting) + 1
                return _StartOutcome(
                    queued=QueuedRun(session_id=session_id, seq=seq, position=position)
                )
            return _Turn(
                prompt=prompt,
                user_message_id=user_message_id,
                files=files,
                answered=next_prompt(approvals_waiting=False, queue=now.queue),
                newly_queued=queued,
            )

        return await self._start_under_lease(session_id, prepared, decide)

    async def _start_queued(self, session_id: str) -> _StartOutcome:
        """The oldest queued prompt's turn; nothing when none waits or a continuation after
        approvals goes first."""
        prepared = await self._prepare(session_id, "")

        async def decide(now: _SessionNow) -> _Turn | _StartOutcome:
            answered = next_prompt(approvals_waiting=bool(now.waiting), queue=now.queue)
            if answered is None or now.decided:  # a continuation goes first
                return _StartOutcome()
            return _Turn(prompt="", answered=answered)

        return await self._start_under_lease(session_id, prepared, decide)

    async def _start_after_approvals(
        self, session_id: str, answer: ApprovalAnswer | None
    ) -> _StartOutcome:
        """The continuation after answered approvals (see `continue_after_approval`)."""
        prepared = await self._prepare(session_id, "")
        if answer is None:
            # Nothing to continue is the common answer (the sweeper asks after every recovery):
            # found without the lease, so a start arriving meanwhile is not refused (409).
            # With an answer to act on, it is asked again below, under the lease.
            probe = await latest_approvals(self.store, session_id)
            if probe.pending() or not probe.decided():
                return _StartOutcome()

        async def decide(now: _SessionNow) -> _Turn | _StartOutcome:
            if now.waiting or not now.decided:
                return _StartOutcome()
            return _Turn(
                prompt="", continuation=True, continues_run_id=now.decided[0].request.run_id
            )

        return await self._start_under_lease(session_id, prepared, decide, answer=answer)

    async def _start_after_crash(self, session_id: str) -> _StartOutcome:
        """The continuation of a turn whose server died (see `continue_after_crash`)."""
        prepared = await self._prepare(session_id, CONTINUE_AFTER_CRASH_PROMPT)

        async def decide(now: _SessionNow) -> _Turn | _StartOutcome:
            # Decided under the lease: of two instances that found the run dead, only the
            # one holding the lease gets here, and finds it still open (or not: nothing).
            crash = self._crash_continuation(now.open_run, prepared.agent.no_retry_tools)
            if crash is None or now.waiting or now.decided:
                # Approvals are the answer's to continue; nothing open: someone else did.
                return _StartOutcome()
            return _Turn(
                prompt=CONTINUE_AFTER_CRASH_PROMPT,
                crash=crash,
                continues_run_id=crash.continues_run_id,
            )

        return await self._start_under_lease(session_id, prepared, decide)

    # -- the core: under the session's lease -------------------------------------------------

    async def _read_under_lease(
        self, session_id: str, answer: ApprovalAnswer | None
    ) -> _SessionNow:
        """What a start decides on, read under the lease: the approvals (with `answer`
        decided on them), the open run and the queue."""
        # Approvals wait only on the latest run (no turn starts while one waits, and a
        # continuation continues the latest): read from its start, or from the start of
        # the run that asked when the latest is a continuation.
        # Read before the approvals: an answer is written only onto the log it was decided on.
        decided_on = await self.store.head(session_id) if answer is not None else None
        approvals_from = await approvals_since(self.store, session_id)
        folded = (
            Approvals()
            if approvals_from is None
            else approvals(await self.store.read_session(session_id, after=approvals_from - 1))
        )
        answering: list[Event] = []
        # An approval outside the latest runs is left to the caller's `record_answer`.
        if answer is not None and answer.approval_id in folded.by_id:
            response = answer.decide(folded, session_id)  # UnknownApproval, ...Answered
            if response is not None:
                folded.by_id[answer.approval_id].response = response
                answering.append(response)
        # Only a run still open in the run index can need recovery: read from its start.
        open_run = await open_run_events(self.store, session_id)
        # A crash continuation goes before the queue: it finishes the turn prompts queued
        # behind it were waiting for (its decision ignores the queue).
        queue = await self.prompt_queue(session_id)
        return _SessionNow(
            decided_on=decided_on,
            approvals_from=approvals_from,
            answering=answering,
            waiting=folded.pending(),
            decided=folded.decided(),
            open_run=open_run,
            queue=queue,
        )

    async def _start_under_lease(
        self,
        session_id: str,
        prepared: _Prepared,
        decide: Callable[[_SessionNow], Awaitable[_Turn | _StartOutcome]],
        *,
        rewind: Rewind | None = None,
        answer: ApprovalAnswer | None = None,
    ) -> _StartOutcome:
        """Take the session's lease (RunAlreadyActive), read the session (`_read_under_lease`),
        let `decide` say what starts (a `_Turn`) or what was done instead (a `_StartOutcome`:
        the lease is released), then append the turn's `run_started` with whatever closes or
        answers before it, in one append, and start driving it."""
        agent = prepared.agent
        run_id = "run_" + uuid.uuid4().hex
        lease = await acquire_for_run(
            self.lock,
            session_id,
            run_id,
            ttl_ms=self.config.lock_ttl_ms,
            handover_seconds=self.config.handover_seconds,
            handing_over=functools.partial(self._handing_over, session_id),
            wait_for_local=functools.partial(self._wait_for_local, session_id),
        )
        try:
            team, fingerprint = await self._team_options(
                agent, session_id, run_id, prepared.metadata
            )
            now = await self._read_under_lease(session_id, answer)
            choice = await decide(now)
            if isinstance(choice, _StartOutcome):
                await release(self.lock, lease)
                return choice
            turn = choice
            prompt, user_message_id, files = turn.prompt, turn.user_message_id, turn.files
            content = prepared.content
            answered = turn.answered  # the queued prompt this run answers
            if answered is not None:
                prompt, user_message_id = answered.prompt, answered.user_message_id
                files = answered.files
                content = await prompt_content(
                    self.store.backend.attachments(), session_id, prompt, files
                )
            # Where the queue this run leaves behind begins (read from there next time).
            queue_from = queue_from_after(now.queue, answered.seq if answered else None)
            if queue_from is None and turn.newly_queued is not None:
                queue_from = await self.store.head(session_id) + 1  # at or before its seq
            crash = turn.crash
            recovery = crash.closing(run_id) if crash is not None else recovery_events(now.open_run)
            # The latest earlier run: where what this run may settle or repair begins.
            previous = await self.store.current_run(session_id)
            rewound: list[Event] = []
            if rewind is None:
                agent_session = await latest_agent_session(self.store, session_id)
                if await self.transcripts.owner(agent_session) not in (None, session_id):
                    # Another session's transcript has this id (a copy of this session was
                    # imported under another name beside it): never share it; a branch of
                    # this session's own, converted from its events, goes on from here.
                    agent_session = agent_session_of_branch(session_id, run_id)
            else:
                agent_session = agent_session_of_branch(session_id, run_id)
                rewound.append(
                    ConversationRewound(
                        to_seq=rewind.to_seq,
                        agent_session=agent_session,
                        trigger=rewind.trigger,
                        message_id=rewind.message_id,
                    )
                )
            batch: list[Event] = [
                *([turn.newly_queued] if turn.newly_queued is not None else []),
                *now.answering,
                *recovery,
                *rewound,
                RunStarted(
                    run_id=run_id,
                    prompt=prompt,
                    agent=self.config.mode,
                    continues_run_id=turn.continues_run_id,
                    resumed_after_crash=crash.resumed_after_crash if crash is not None else 0,
                    agent_session=agent_session,
                    user_message_id=user_message_id,
                    agent_name=agent.name,
                    agent_fingerprint=fingerprint,
                    files=list(files),
                    queued_seq=answered.seq if answered is not None else None,
                    queue_from=queue_from,
                ),
            ]
            # An answer is decided on the log as read: written only if it is still the log.
            expected = now.decided_on if now.answering else None
            if rewind is not None and rewind.expected_head is not None:
                # The append checks it atomically: a plan made on a log changed since is
                # refused (ExpectedSeqMismatch) with nothing written.
                expected = await rewind_expected_seq(self.store, session_id, rewind.expected_head)
            seqs = await self.store.append(session_id, batch, expected_seq=expected)
            await self.abandoned.clear(recovery)
        except BaseException:
            await release(self.lock, lease)
            raise
        translator = SdkTranslator(run_id, scripted=self.config.mode == "scripted")
        for approval in now.decided:
            translator.adopt(approval.request.tool_call_id)  # this run reports their ends
        run = RunInFlight(
            session_id=session_id,
            run_id=run_id,
            agent_session=agent_session,
            prompt=prompt,
            content=content,
            continuation=turn.continuation,
            queue_waited=queue_from is not None,
            lease=lease,
            start_seq=seqs[-1],
            previous_run_seq=None if previous is None else previous.started_seq,
            approvals_since=now.approvals_from,
            translator=translator,
            agent=agent,
            team_options=team,
            not_again=crash.not_again if crash is not None else frozenset(),
            recorder=RunRecorder(
                self.store,
                session_id,
                run_id,
                # The store refuses this run's events once it is not the session's current run.
                fence=RunFence(run_id=run_id, token=seqs[-1]),
                after_seq=seqs[-1],
                on_delayed=self._count_delayed,
            ),
        )
        run.recorder.on_failure = lambda exc: self._stop(run, f"could not record events: {exc}")
        run.recorder.holds_lease = lambda: not run.lock_lost
        self._runs[session_id] = run
        with log_context(session_id=session_id, run_id=run_id):  # the run's task logs its ids
            run.task = asyncio.create_task(self._drive(run), name=f"agentlog-run-{run_id}")
        # A client streaming from `offset` sees the whole run, and the rewind it answers from.
        first = seqs[-1 - len(rewound)]
        started = StartedRun(session_id=session_id, run_id=run_id, offset=first - 1)
        if turn.newly_queued is None:
            return _StartOutcome(started=started)
        # The oldest queued prompt started; this one waits behind the rest.
        position = len(now.queue.waiting)
        queued = QueuedRun(
            session_id=session_id, seq=seqs[0], position=position, behind_run_id=run_id
        )
        return _StartOutcome(started=started, queued=queued)

    async def _session_agent(self, session_id: str) -> tuple[HostedAgent, dict[str, Any]]:
        """The agent a session's first event names (None: the default), and its metadata."""
        first = await self.store.read(session_id, after=0, limit=1)
        event = first[0].event if first else None
        if isinstance(event, SessionCreated):
            return self.agents.get(event.agent), dict(event.metadata)
        return self.agents.get(None), {}

    async def _team_options(
        self, agent: HostedAgent, session_id: str, run_id: str, metadata: dict[str, Any]
    ) -> tuple[ClaudeAgentOptions | None, str | None]:
        """A team agent's options for this run and their fingerprint; (None, None) for the
        demo agent. A function that fails, or options agentlog cannot host, refuse the start
        (AgentOptionsFailed) with nothing written."""
        context = AgentContext(
            session_id=session_id, agent=agent.name, run_id=run_id, metadata=metadata
        )
        try:
            team = await agent.options_for(context)
            if team is None:
                return None, None
            team_options.check(team, self.config.disabled_tools)
        except team_options.TeamOptionsRefused as exc:
            raise AgentOptionsFailed(agent.name, str(exc)) from exc
        except Exception as exc:  # the team's code can raise anything
            # The client learns the kind of failure; the message (which may name a database
            # or hold a secret) goes to the operator's log only.
            log.error("agent %s failed for session %s: %r", agent.name, session_id, exc)
            why = f"{type(exc).__name__} (the server log has the details)"
            raise AgentOptionsFailed(agent.name, why) from exc
        return team, agent_fingerprint(team, agent.template_digest)

    async def cancel(self, session_id: str, run_id: str, reason: str = "cancelled") -> bool:
        """Stop the run, wherever it runs, and wait (bounded) for its terminal event: True once
        it is in the log, False when the run is still stopping when the wait ends."""
        run = self._runs.get(session_id)
        if run is not None and run.run_id == run_id:
            await self._cancel(run, reason)
            return await self._wait_for_end(session_id, run_id, 0)
        indexed = await self.store.run(session_id, run_id)
        if indexed is None:
            raise UnknownRun(session_id, run_id)
        if indexed.ended_seq is not None:
            raise RunNotActive(session_id, run_id)
        if await self.lock.holder(session_id) == run_id:
            # Another process drives it: ask it, then wait (bounded) for the run's end.
            await self.lock.request_cancel(session_id, run_id, reason, self.config.lock_ttl_ms)
            return await self._wait_for_end(session_id, run_id, self._cancel_timeout())
        await self.recover_abandoned(session_id)
        raise RunNotActive(session_id, run_id)

    @property
    def active_count(self) -> int:
        """Runs this process is driving now, and those it is starting by itself."""
        return len(self._runs) + self._starting_here

    def limit_runs(self, max_active: int, starting_elsewhere: Callable[[], int]) -> None:
        """Hold the turns this process starts by itself (a crash continuation found by the
        sweep, the next turn after a recovered run) to `max_active` runs at once, counting
        `starting_elsewhere()`, the starts under way at the HTTP edge (which checks the same
        limit against `active_count`). A turn that finds no free slot waits in the log, open,
        and goes on when one of this process's runs ends (or at a later sweep)."""
        self._max_active = max_active
        self._starting_elsewhere = starting_elsewhere

    def _slot_free(self) -> bool:
        if self._max_active is None:
            return True
        return self.active_count + self._starting_elsewhere() < self._max_active

    @property
    def waiting_for_slot(self) -> list[str]:
        """Sessions whose turn waits for a free slot here, oldest first."""
        return list(self._waiting_for_slot)

    async def _start_waiting(self) -> None:
        """As a run ends: the turns that waited for its slot, oldest first, while slots are
        free (each decided again: another instance may have gone on with it meanwhile)."""
        while self._waiting_for_slot and self._slot_free() and not self._closing:
            session_id = next(iter(self._waiting_for_slot))
            del self._waiting_for_slot[session_id]
            try:
                outcome = await self._continue_after_crash(session_id)
                if outcome is _NO_SLOT:
                    return  # taken meanwhile: it waits again, for the next run's end
                if outcome is None:
                    # Nothing to continue after a crash (any more): the next turn, if any.
                    await self._next_turn(session_id)
            except Exception as exc:  # noqa: BLE001 - the next sweep looks again
                log.info("session %s: the waiting turn did not start: %r", session_id, exc)

    async def active_run(self, session_id: str) -> str | None:
        run = self._runs.get(session_id)
        if run is not None:
            return run.run_id
        holder = await self.lock.holder(session_id)
        return None if holder is None or holder.startswith(RECOVERY_PREFIX) else holder

    async def close(self) -> None:
        """Server shutdown: every run of this process is handed over to the crash
        continuation (`_hand_off`), or with continuation off cancelled; then the job service
        stops."""
        self._closing = True
        runs = list(self._runs.values())
        end = self._hand_off if self.config.continue_after_crash else self._shutdown_cancel
        await asyncio.gather(*(end(run) for run in runs), return_exceptions=True)
        for task in list(self._helpers):
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        if self._own_jobs and isinstance(self.jobs, InProcessJobService):
            await self.jobs.close()
        await self.sandbox.close()

    async def _shutdown_cancel(self, run: RunInFlight) -> None:
        await self._cancel(run, "server shutdown")

    async def _hand_off(self, run: RunInFlight) -> None:
        """Shutdown with crash continuation on: the turn goes on elsewhere, as after a crash,
        without waiting out a lease. The CLI is stopped, not interrupted (an interrupt ends
        the turn: the model's `run_cancelled`), nothing more is recorded for the run (what it
        queued is written), and the lease is released once the CLI is gone: the log then holds
        an open run that nobody holds, which is what a crash leaves, one lease sooner. A live
        instance's sweeper, or this server's own sweep after a restart, continues it by the
        crash rule (calls in flight interrupted, tools not to be retried refused, at most
        `max_continuations` in a row), in the one append that closes the run and starts the
        next; a run that may not be continued (an approval waits on it, too many in a row) is
        recorded abandoned by that sweep instead."""
        if run.terminal_recorded or run.stopping:
            # Ending by itself, or already cancelled or failing: it ends as it would have.
            with contextlib.suppress(RunNotActive):
                await self._cancel(run, "server shutdown")
            return
        run.handing_off = True
        run.recorder.seal()
        run.stop.set()  # the reader lets go and leaving the client's context ends the CLI
        log.info("run %s: handed over at shutdown; its turn goes on after the restart", run.run_id)
        if await _torn_down(run):
            self.handed_off += 1

    # -- abandoned runs ------------------------------------------------------------------------

    async def recover_abandoned(self, session_id: str) -> bool:
        """If the log says a run is active but nobody holds the session's lock, record
        `run_abandoned` and end its tool calls. True when something was recorded."""
        return await self.abandoned.recover(session_id)

    async def sweep(self, session_ids: Sequence[str]) -> list[str]:
        """Recover every candidate session whose run has no live lock (on startup with
        LocalRunLock, that is every session the log shows running). Returns those recovered:
        each dead run's turn goes on in a new run (`continue_after_crash`), or, when it may
        not, the run is recorded abandoned."""
        continued = []
        waiting = []
        for session_id in session_ids:
            try:
                outcome = await self._continue_after_crash(session_id)
            except Exception as exc:  # noqa: BLE001 - one bad session must not stop the sweep
                log.warning("session %s: could not continue its turn: %r", session_id, exc)
                continue
            if outcome is _NO_SLOT:
                # At AGENTLOG_MAX_ACTIVE_RUNS: the run stays open (never abandoned for want of
                # a slot) and goes on when one of this process's runs ends, or a later sweep.
                waiting.append(session_id)
                self._waiting_for_slot[session_id] = None
            elif outcome is not None:
                continued.append(session_id)
        rest = [s for s in session_ids if s not in continued and s not in waiting]
        recovered = await self.abandoned.sweep(rest)
        for session_id in recovered:
            # A run whose server died while a call waited on its approval: if the answer is
            # already in the log, the turn goes on here, now; else prompts queued behind the
            # dead run start theirs. Either is a turn of its own: it waits for a slot too.
            if self._slot_free():
                await self._next_turn(session_id)
            else:
                self._waiting_for_slot[session_id] = None
        return continued + recovered

    async def continue_after_crash(self, session_id: str) -> StartedRun | None:
        """If the session's open run lost its owner (no live lease), continue its turn in a
        new run, exactly once whoever else tries (agentlog.domain.rules.crash_continuation).
        None when there is nothing to continue, the run may not be continued (off, too many
        times, an approval waits: the caller abandons it as before), it is alive, or no slot
        is free (`limit_runs`: then it waits, open, for one)."""
        outcome = await self._continue_after_crash(session_id)
        if outcome is _NO_SLOT:
            self._waiting_for_slot[session_id] = None
            return None
        assert not isinstance(outcome, _NoSlot)
        return outcome

    async def _continue_after_crash(self, session_id: str) -> StartedRun | _NoSlot | None:
        """`continue_after_crash`, with _NO_SLOT when the turn would go on but no slot is
        free (the caller keeps it waiting)."""
        if not self.config.continue_after_crash or session_id in self._runs:
            return None
        # The sweep asks about every open run, live ones too: the lease first (one cheap
        # read), then the run's events, each without taking the lease, so a start arriving
        # meanwhile is not refused. Decided again under the lease.
        if await self.lock.holder(session_id) is not None:
            return None  # alive, or being recovered by another process
        if self._crash_continuation(await open_run_events(self.store, session_id)) is None:
            return None
        if not self._slot_free():
            return _NO_SLOT
        # Counted from here: a start at the HTTP edge, or another continuation, meanwhile
        # sees this slot taken.
        self._starting_here += 1
        try:
            outcome = await self._start_after_crash(session_id)
        except RunAlreadyActive:
            return None  # another instance took the lease first: it continues the turn
        finally:
            self._starting_here -= 1
        started = outcome.started
        if started is not None:
            self._waiting_for_slot.pop(session_id, None)
            self.continued_after_crash += 1
            log.info(
                "session %s: the turn of a run whose server died goes on in run %s",
                session_id,
                started.run_id,
            )
        return started

    def _crash_continuation(
        self, open_run: Sequence[RecordedEvent], agents_own: frozenset[str] = frozenset()
    ) -> CrashContinuation | None:
        """The rule, with the server's tools not to be retried and the agent's own."""
        return crash_continuation(
            open_run,
            max_continuations=self.config.max_continuations,
            no_retry_tools=self.config.no_retry_tools | agents_own,
        )

    def agent_process_ids(self, run_id: str) -> list[int]:
        """Processes (the CLI and its children) started for `run_id` that are still alive."""
        return agent_process_ids(run_id)

    # -- the lease hand-over -------------------------------------------------------------------

    async def _handing_over(self, session_id: str, holder: str) -> bool:
        """True if the run `holder` already ended in the log (its CLI is exiting)."""
        local = self._runs.get(session_id)
        if local is not None and local.run_id == holder:
            return local.terminal_recorded
        indexed = await self.store.run(session_id, holder)
        return indexed is not None and indexed.ended_seq is not None

    async def _wait_for_local(self, session_id: str, holder: str, timeout: float) -> bool:
        local = self._runs.get(session_id)
        if local is None or local.run_id != holder:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await local.done.wait()
        return True

    # -- the turn ------------------------------------------------------------------------------

    async def _drive(self, run: RunInFlight) -> None:
        beats = asyncio.create_task(
            heartbeats(run, self.config.heartbeat_seconds), name=f"agentlog-heartbeat-{run.run_id}"
        )
        lease = asyncio.create_task(
            keep_lease(
                self.lock,
                run.lease,
                refresh_seconds=self.config.lease_refresh_seconds,
                ttl_seconds=self.config.lock_ttl_seconds,
                cancel_poll_seconds=self.config.cancel_poll_seconds,
                on_lost=lambda: self._lose_lease(run),
                on_cancel=lambda reason: self._spawn(self._cancel(run, reason)),
            ),
            name=f"agentlog-lease-{run.run_id}",
        )
        run.watch = await _start_orphan_watch(run.run_id, self.run_home_root)
        error: BaseException | None = None
        try:
            # The log from the latest earlier run's start on: the approvals this run may settle,
            # and whatever the transcript can be missing. O(run), however long the session.
            recent = await self.store.read_session(
                run.session_id, after=(run.previous_run_seq or run.start_seq) - 1
            )
            agent = run.agent or self.agents.get(None)
            home = await asyncio.to_thread(
                prepare_run_home,
                self.workspace_root,
                self.run_home_root,
                run.session_id,
                run.run_id,
                agent.template,
            )
            transcripts = self.transcripts.for_session(run.session_id)
            resume = await ready_transcript(
                transcripts,
                self.store,
                session_id=run.session_id,
                agent_session=run.agent_session,
                cwd=home.cwd,
                start_seq=run.start_seq,
                has_earlier_runs=run.previous_run_seq is not None,
                recent=recent,
            )
            asked = recent
            if run.approvals_since is not None and run.approvals_since < (
                run.previous_run_seq or run.start_seq
            ):
                # A continuation of a continuation: the call it settles was asked further back.
                asked = await self.store.read_session(run.session_id, after=run.approvals_since - 1)
            run.gate = ApprovalGate(
                self.store,
                run.session_id,
                asked,
                grace_seconds=self.config.approval_grace_seconds,
            )
            del asked
            del recent  # not needed any more; runs can be long
            team = run.team_options
            permits = ToolPermits()
            options = agent_options(
                self.config,
                run_id=run.run_id,
                home=home,
                agent_session=run.agent_session,
                resume=resume,
                session_store=transcripts,
                hooks=run_hooks(
                    run.translator,
                    run.recorder,
                    self.config.policy.refusing_again(run.not_again),
                    self.config.not_enabled,
                    self.config.approval,
                    run.gate,
                    team_hooks=team.hooks if team is not None else None,
                    permits=permits,
                ),
                mcp_servers=(
                    {"demo": demo_mcp_server(self.jobs, self.config.poll)} if team is None else {}
                ),
                stderr=run.stderr.append,
                base_url=self.base_url,
                team=team,
                can_use_tool=(
                    recorded_permission(team.can_use_tool, run.translator, run.recorder)
                    if team is not None and team.can_use_tool is not None
                    else None
                ),
            )
            # A team's stdio MCP servers run in the sandbox: they need its folder and Python.
            readable = python_folders(agent.folder) if team is not None else []
            if isinstance(options.mcp_servers, dict):
                refusal = functools.partial(self._tool_refusal, run, permits)
                options = replace(
                    options, mcp_servers=guarded_servers(options.mcp_servers, refusal)
                )
            # Without the sandbox there is no gateway: the CLI's own figures are all there is.
            if self.sandbox.enabled:
                run.meter = run_meter(options, run, scripted=self.config.mode == "scripted")
            egress = (
                EgressProxy(self.config.egress, functools.partial(_egress_refused, run))
                if self.config.egress
                else None
            )
            options = await self.sandbox.confine(
                options, run.run_id, Path(home.cwd), home.home, readable, run.meter, egress
            )
            if not run.stopping:
                # The resume is written to disk in a thread, not by connect() on the loop.
                async with (
                    resumed_off_loop(options) as resumed,
                    ClaudeSDKClient(resumed) as client,
                ):
                    if resume:  # the SDK's copy of the transcript: cleared after a crash too
                        await asyncio.to_thread(note_resume_directory, run.run_id, home.home)
                    error = await drive_turn(run, client)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the run's terminal event
            error = error or exc
        except asyncio.CancelledError:
            # Only close() cancels this task, as a last resort; record, then let it go.
            if not run.handing_off:
                run.cancel_reason = run.cancel_reason or "server shutdown"
                safety_net(run, None)
            await self._wind_down(run, beats, lease)
            raise
        if run.lock_lost:
            await self._reconcile(run)
        if run.handing_off:
            # Left open in the log, its calls in flight too: the crash continuation's to close.
            log.debug("run %s: handed over (%r)", run.run_id, error)
        else:
            safety_net(run, error)
        await self._wind_down(run, beats, lease)

    def _tool_refusal(
        self, run: RunInFlight, permits: ToolPermits, tool: str, call_id: str | None, args: Any
    ) -> str | None:
        """Why an in-process tool call the CLI's stream asks for must not run (recorded), or
        None (tool_permits.py): the policy's reason, or no PreToolUse decision for it."""
        why = self.config.not_enabled(tool) or self.config.policy.refusing_again(
            run.not_again
        ).decide(tool, args if isinstance(args, dict) else None)
        if why is None and not permits.take(call_id, tool):
            why = (
                f"{tool} was not run: no tool call of this run that the server let through "
                "asked for it (the CLI's stream is not trusted for that)."
            )
        if why is not None:
            log.warning("run %s: refused in-process call of %s: %s", run.run_id, tool, why)
            run.recorder.record(
                [
                    ToolCallRefused(
                        run_id=run.run_id,
                        tool_name=tool,
                        tool_call_id=call_id,
                        input=args,
                        reason=why,
                    )
                ]
            )
        return why

    def _count_delayed(self) -> None:
        self.delayed_batches += 1

    def _lose_lease(self, run: RunInFlight) -> None:
        run.lock_lost = True
        self._stop(run, "the run lost its session lock")

    async def _reconcile(self, run: RunInFlight) -> None:
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

    async def _wind_down(self, run: RunInFlight, *tasks: asyncio.Task[None]) -> None:
        """Stop the timers, make the events durable, remove what the run left, release."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await run.recorder.close()
        except Exception as exc:  # noqa: BLE001
            log.error("run %s: recorder: %s", run.run_id, exc)
        await asyncio.to_thread(remove_leftovers, run.run_id, self.run_home_root)
        self.sandbox.forget(run.run_id)
        await _end_orphan_watch(run.watch)
        if self._runs.get(run.session_id) is run:
            del self._runs[run.session_id]
        await release(self.lock, run.lease)  # last: the next run must find everything settled
        run.done.set()
        if not self._closing:
            # An answer that came while this run was finishing found the lease taken and
            # started nothing: the turn goes on now (a cheap read when nothing is decided).
            # One written after this look is its writer's to continue (continue_after_answer).
            self._spawn(self._after_run(run))
            if self._waiting_for_slot:
                self._spawn(self._start_waiting())  # this run's slot is free

    async def _after_run(self, run: RunInFlight) -> None:
        """The next turn after `run`, looked for only when something can be waiting."""
        if not await self._nothing_waits_after(run):
            await self._next_turn(run.session_id)

    async def _nothing_waits_after(self, run: RunInFlight) -> bool:
        """True when, in one read of the head, nothing can wait after `run`: no prompt was
        queued when it started, and every event of the session from its start to the head is
        the run's own, so nobody queued a prompt or answered an approval meanwhile (each is
        an append of its own). Asked after the lease was released, as `_next_turn` is: a
        prompt is queued by an append fenced on this run (so before its end) or under the
        lease, so it is seen here; an answer refused by the lease may be written after this
        look, and its writer then looks again (`continue_after_answer`)."""
        recorder = run.recorder
        if run.queue_waited or not recorder.alone or recorder.last_seq is None:
            return False
        try:
            return await self.store.head(run.session_id) == recorder.last_seq
        except Exception:  # noqa: BLE001 - look the long way
            return False

    async def _next_turn(self, session_id: str) -> bool:
        """After a run ended (or was recovered): the turn that continues after answered
        approvals, else the oldest queued prompt's turn (cheap reads when neither waits).

        The session's mark in the turns-due index (left by the answer or the queued prompt
        in its own append) is removed only when this look found nothing to start: a turn
        started here ends with a look of its own, and a look lost to a crash or a shutdown
        in between leaves the mark for the sweep (`sweep_turns_due`). False when the look
        failed (logged)."""
        try:
            head = await self.store.head(session_id)  # before the look: newer marks stay
            started = await self.continue_after_approval(session_id)
            if started is None:
                started = await self.start_next_queued(session_id)
            if started is None:
                await self.store.settle_turn_due(session_id, head)
        except Exception as exc:  # noqa: BLE001 - the next answer, start or sweep retries it
            log.info("session %s: no next turn after the run: %r", session_id, exc)
            return False
        return True

    async def sweep_turns_due(self, due: Sequence[TurnDue]) -> list[str]:
        """The looks for a next turn that nobody made: an answer's writer or a run's server
        that died (or shut down) between the write and its look. Each session no run holds
        is looked at here (`_next_turn`); one a run holds is left to that run's end, or to
        the crash sweep when its server is dead. Returns the sessions looked at."""
        looked = []
        for turn in due:
            session_id = turn.session_id
            if self._closing:
                break
            if session_id in self._runs or session_id in self._waiting_for_slot:
                continue
            try:
                if await self.lock.holder(session_id) is not None:
                    continue  # its run (or its recovery) looks when it ends
            except Exception as exc:  # noqa: BLE001 - one bad session must not stop the sweep
                log.warning("session %s: could not read its lease: %r", session_id, exc)
                continue
            if not self._slot_free():
                self._waiting_for_slot[session_id] = None  # `_start_waiting` looks
                continue
            if self._due_retry.get(session_id, 0.0) > time.monotonic():
                continue  # its last look failed (an agent this server lacks, say): not yet
            if await self._next_turn(session_id):
                self._due_retry.pop(session_id, None)
            else:
                self._due_retry[session_id] = time.monotonic() + _DUE_RETRY_SECONDS
            looked.append(session_id)
        # Forget the sessions whose wait is over (settled since, or tried again next time).
        now = time.monotonic()
        self._due_retry = {s: t for s, t in self._due_retry.items() if t > now}
        return looked

    # -- stopping ------------------------------------------------------------------------------

    async def _cancel(self, run: RunInFlight, reason: str) -> None:
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
        await _torn_down(run)

    def _stop(self, run: RunInFlight, why: str) -> None:
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

    # -- reading the log -----------------------------------------------------------------------

    async def _wait_for_end(self, session_id: str, run_id: str, timeout: float) -> bool:
        """Wait until the log shows `run_id` ended; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        async with self.store.subscribe(session_id) as wakeup:
            while True:
                indexed = await self.store.run(session_id, run_id)
                if indexed is None or indexed.ended_seq is not None:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                await wakeup.wait(min(remaining, 1.0))


async def _start_orphan_watch(
    run_id: str, run_home_root: Path
) -> asyncio.subprocess.Process | None:
    """The run's orphan watch (`orphan_watch.py`): ends the CLI if this server dies."""
    if not sys.platform.startswith("linux"):
        return None  # it finds the run's processes through /proc
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agentlog.infra.agent.recovery.orphan_watch",
            str(os.getpid()),
            run_id,
            str(run_home_root),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        log.warning("run %s: no orphan watch: %s", run_id, exc)
        return None


async def _end_orphan_watch(watch: asyncio.subprocess.Process | None) -> None:
    if watch is None or watch.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        watch.kill()
    await watch.wait()


async def _torn_down(run: RunInFlight) -> bool:
    """Wait for a stopped run's teardown; True when it ended by itself. One that hangs past
    the SDK's own bound (~20 s) has its task cancelled (False)."""
    try:
        async with asyncio.timeout(30):
            await run.done.wait()
        return True
    except TimeoutError:
        pass
    if run.task is not None and not run.task.done():
        log.error("run %s: teardown hung; cancelling its task", run.run_id)
        run.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run.task
    return False


def _egress_refused(run: RunInFlight, host: str, port: int, why: str) -> None:
    run.recorder.record([EgressRefused(run_id=run.run_id, host=host, port=port, reason=why)])


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("agent runner helper failed: %r", task.exception())


@asynccontextmanager
async def open_agent_runner(
    store: RunStore,
    *,
    config: AgentConfig | None = None,
    base_url: str | None = None,
    jobs: JobService | None = None,
    agents: AgentCatalog | None = None,
    **overrides: Any,
) -> AsyncIterator[AgentRunner]:
    """An AgentRunner with its lock (the database's own: on PostgreSQL in the database, so
    several processes sharing it keep one run per session; on SQLite in-process) and, in
    scripted mode without `base_url`, a ScriptedModel on loopback; everything closes on exit,
    runs first (cancelled as "server shutdown"). `overrides` replace fields of `config`.
    `agents`: the config's agents already loaded (else loaded here)."""
    config = replace(config or AgentConfig(), **overrides)
    if config.workspace_root is None:  # the deployment's own: another one's share no session
        config = replace(config, workspace_root=default_workspace_root(await deployment_key(store)))
    if agents is None:
        agents = await load_catalog(config.agents, config.disabled_tools)
    async with contextlib.AsyncExitStack() as stack:
        lock = await open_run_lock(store)
        stack.push_async_callback(lock.close)
        if config.mode == "scripted" and base_url is None:
            model = ScriptedModel(shell_command=config.scripted_shell_command)
            base_url = await model.start()
            stack.push_async_callback(model.close)
        runner = AgentRunner(store, lock, config, base_url=base_url, jobs=jobs, agents=agents)
        stack.push_async_callback(runner.close)
        yield runner
