"""Agent runs: one active turn per session across every process, as the HTTP edge sees them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from agentlog.domain.events import AttachedFile


class StartedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run that was accepted: `offset` is the session's head just before `run_started` (or
    before the `conversation_rewound` it answers from), so a client that streams from it sees
    the whole run."""

    session_id: str
    run_id: str
    offset: int


class QueuedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A prompt sent while the session was busy, waiting in the log (`prompt_queued` at `seq`)
    for its turn: `position` 1 goes next. `behind_run_id`: the run active when it was queued,
    or the queued turn that started with it; None when it waits behind an approval."""

    session_id: str
    seq: int
    position: int
    behind_run_id: str | None = None
    # Handed to the running turn as steering (`behind_run_id`): it leaves the queue when the
    # run records it delivered at its next step boundary.
    steered: bool = False


class Rewind(msgspec.Struct, frozen=True, kw_only=True):
    """Start a run from an earlier point: the conversation goes back to `to_seq` (the last seq
    kept on the current branch) and the run answers from there (`conversation_rewound`)."""

    to_seq: int
    trigger: str = "from_message"  # "regenerate", "edit" or "from_message"
    message_id: str | None = None  # the UI message rewound to
    # The session's head when the rewind was planned: the runner appends with it as
    # `expected_seq`, so a conversation that changed since (another rewind, a run, an append)
    # is refused (ExpectedSeqMismatch) instead of going back further than meant. Events that
    # only close an abandoned run do not count (they land after any turn a rewind keeps).
    # None: not checked.
    expected_head: int | None = None


class AgentRuns(Protocol):
    """Agent turns, one active run per session across every process.

    Contract:
    - `start` records `run_started` and returns at once; the turn runs in the background and
      everything it does is appended as it happens. A second start while a run is active
      raises RunAlreadyActive with that run's id. A run whose owner died (lock expired) is
      first recorded as `run_abandoned`, its tool calls resolved, and the start proceeds.
      Found by no start, such a run's turn is continued in a new run by the implementation's
      sweep (agentlog.domain.rules.crash_continuation), once, under the lock.
    - Every run ends with exactly one terminal event (`run_finished`, `run_failed`,
      `run_cancelled`, `run_abandoned`), and every tool call it started gets exactly one
      terminal event, whatever happens (result, SDK error, CLI crash, cancel, shutdown).
    - `cancel` interrupts the turn, records `run_cancelled`, releases the lock and leaves no
      task or process behind, on whichever process drives it; it returns True once the run's
      terminal event is in the log, False if the run is still stopping when its bounded wait
      ends (the owner keeps its lease until its CLI is gone). Raises UnknownRun / RunNotActive.
    - With `rewind`, `conversation_rewound` and `run_started` are appended in one batch, and
      the agent's context is the current branch only (agentlog.domain.rules.branches). With
      `rewind.expected_head`, a log changed since (beyond closing an abandoned run) raises
      ExpectedSeqMismatch and nothing is written.
    - `user_message_id` names the prompt's user message in the UIMessage projection (the
      client's own id); None: `<run id>:user`.
    - `send` is `start` for a session that may be busy: while a run is active (or an approval
      waits, or prompts already wait) the prompt is appended as `prompt_queued` and a
      QueuedRun returned; the append is fenced on the active run (or made under the lease),
      so a prompt is never queued after the run it waits on ended. Whenever a run ends and
      nothing waits on a person, the oldest queued prompt starts the next turn (an
      interrupt's first), on whichever process ended it or recovers it. With `steer`, a
      prompt queued behind a run this process drives is also handed to its agent at once
      (QueuedRun.steered): delivered at the next step boundary, or, if the turn ends first,
      answered by a turn of its own.
    """

    async def start(
        self,
        session_id: str,
        prompt: str,
        rewind: Rewind | None = None,
        *,
        user_message_id: str | None = None,
        files: Sequence[AttachedFile] = (),
    ) -> StartedRun: ...

    async def send(
        self,
        session_id: str,
        prompt: str,
        *,
        user_message_id: str | None = None,
        interrupt: bool = False,
        steer: bool = False,
        files: Sequence[AttachedFile] = (),
    ) -> StartedRun | QueuedRun: ...

    async def cancel(self, session_id: str, run_id: str) -> bool: ...

    async def active_run(self, session_id: str) -> str | None: ...

    async def close(self) -> None: ...
