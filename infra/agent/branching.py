"""Which CLI session a run resumes, and the transcript of a new branch (rewind, fork).

Each agentlog session's conversation is, for the agent, one CLI session ("agent session")
whose transcript lives in agentlog's database (`LogSessionStore`). Every `run_started`
records the agent session it resumes; the next run takes the latest one. A rewind
(regenerate, edit, `from_message_id`) or a fork starts a *new* agent session whose transcript
is the kept part of the old one, so the agent's context is the current branch only, and the
old branch's transcript stays as it was (the log still holds that branch too).

Contract used by the rewind and fork paths (keep these signatures):
- `agent_session_of_branch(session_id, run_id)`: the new agent session for a rewind that
  the run `run_id` answers from;
- `fork_agent_session(session_id)`: a fork's agent session (the default of a new session);
- `write_branch_transcript(...)`: writes the new agent session's transcript, bound to the
  agentlog session that owns it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import cast

from claude_agent_sdk.types import SessionStoreEntry

from domain.events import RecordedEvent, RunStarted
from domain.ports import EventStore

# RUNNER_PROJECT_KEY: the project key of every transcript the runner writes. The SDK derives
# a project key from the CLI's working directory, which differs between instances with other
# workspace roots; a store bound to a session (the runner's) files them all under this one
# key, whatever key it is given, so any instance resumes them.
from infra.agent.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from infra.agent.transcript import NAMESPACE, agent_session_id, transcript_lines


async def latest_agent_session(store: EventStore, session_id: str) -> str:
    """The agent session the session's next run resumes: its latest run's (one event read
    through the run index), or `agent_session_id(session_id)` for a session that never ran
    or whose runs were recorded before branches existed."""
    current = await store.current_run(session_id)
    if current is not None:
        found = await store.read(session_id, after=current.started_seq - 1, limit=1)
        if found and isinstance(found[0].event, RunStarted) and found[0].event.agent_session:
            return found[0].event.agent_session
    return agent_session_id(session_id)


def agent_session_of_branch(session_id: str, run_id: str) -> str:
    """The agent session of the branch that run `run_id` starts by rewinding."""
    return str(uuid.uuid5(NAMESPACE, f"{session_id}:branch:{run_id}"))


def fork_agent_session(session_id: str) -> str:
    """A fork's agent session: the one any new session starts with."""
    return agent_session_id(session_id)


async def write_branch_transcript(
    session_store: LogSessionStore,
    *,
    session_id: str,
    agent_session: str,
    branch_events: Sequence[RecordedEvent],
    cwd: str,
) -> int:
    """Write the transcript of `agent_session` (bound to agentlog session `session_id`): the
    conversation of `branch_events` (the current branch's events up to the branch point, in
    log order, as `domain.branches.current_branch` gives them). Returns the entries written;
    0 when the branch holds no run yet (the first run then starts the agent session)."""
    lines = transcript_lines(
        branch_events, session_id=session_id, agent_session=agent_session, cwd=cwd
    )
    if lines:
        bound = session_store.for_session(session_id)
        await bound.append(
            {"project_key": RUNNER_PROJECT_KEY, "session_id": agent_session},
            cast("list[SessionStoreEntry]", lines),
        )
    return len(lines)
