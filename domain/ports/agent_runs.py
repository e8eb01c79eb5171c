"""Agent runs: one active turn per session across every process, as the HTTP edge sees them."""

from __future__ import annotations

from typing import Protocol

import msgspec


class StartedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run that was accepted: `offset` is the session's head just before `run_started` (or
    before the `conversation_rewound` it answers from), so a client that streams from it sees
    the whole run."""

    session_id: str
    run_id: str
    offset: int


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
    """

    async def start(
        self,
        session_id: str,
        prompt: str,
        rewind: Rewind | None = None,
        *,
        user_message_id: str | None = None,
    ) -> StartedRun: ...

    async def cancel(self, session_id: str, run_id: str) -> bool: ...

    async def active_run(self, session_id: str) -> str | None: ...

    async def close(self) -> None: ...
