"""Which CLI session a run resumes, and the transcript of a new branch (rewind, fork).

Each agentlog session's conversation is, for the agent, one CLI session ("agent session")
whose transcript lives in agentlog's database (`LogSessionStore`). Every `run_started`
records the agent session it resumes; the next run takes the latest one. A rewind
(regenerate, edit, `from_message_id`) or a fork starts a *new* agent session whose transcript
is the kept part of the old one, so the agent's context is the current branch only, and the
old branch's transcript stays as it was (the log still holds that branch too).

A new branch's transcript is the CLI's own lines of the turns it keeps, taken from the
transcript they were mirrored into (`own_lines_of_branch`; a rewind stores them as a reference
to that transcript, `branch_reference` and references.py; a fork copies them): every prompt line
carries its run's `prompt_uuid` (the runner sends the prompt with it, and the CLI keeps it), so
the lines up to the first prompt of a turn the branch does not keep are exactly the kept turns,
with the CLI's attachments, thinking and tool results as it wrote them. Where that cannot be
done (a source transcript the store never had, or one missing a kept turn's prompt: written
before prompts carried their uuid) the branch is converted from its events instead
(`transcript.transcript_lines`), which the CLI accepts as well.

Contract used by the rewind and fork paths (keep these signatures):
- `agent_session_of_branch(session_id, run_id)`: the new agent session for a rewind that
  the run `run_id` answers from;
- `fork_agent_session(session_id)`: a fork's agent session (the default of a new session);
- `write_branch_transcript(...)`: writes the new agent session's transcript, bound to the
  agentlog session that owns it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, cast

from claude_agent_sdk.types import SessionStoreEntry

from agentlog.domain.events import RecordedEvent, RunStarted

# RUNNER_PROJECT_KEY: the project key of every transcript the runner writes. The SDK derives
# a project key from the CLI's working directory, which differs between instances with other
# workspace roots; a store bound to a session (the runner's) files them all under this one
# key, whatever key it is given, so any instance resumes them.
from agentlog.infra.agent.run.recorder import RunStore
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.agent.transcripts.conversion import (
    CANCELLED_MARKER,
    NAMESPACE,
    agent_session_id,
    prompt_uuid,
    transcript_lines,
)
from agentlog.infra.agent.transcripts.references import prefix_reference, rebased


async def latest_agent_session(store: RunStore, session_id: str) -> str:
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
    source_agent_session: str | None = None,
    source_session_id: str | None = None,
) -> int:
    """Write the transcript of `agent_session` (bound to agentlog session `session_id`): the
    conversation of `branch_events` (the current branch's events up to the branch point, in
    log order, as `agentlog.domain.rules.branches.current_branch` gives them). With
    `source_agent_session`
    (the agent session those turns were mirrored into, a transcript of `source_session_id`,
    by default `session_id`), the CLI's own lines of the kept
    turns; else, or when they cannot be told apart, converted from the events. Returns the
    entries written; 0 when the branch holds no run yet (the first run then starts it)."""
    lines: list[dict[str, Any]] | None = None
    if source_agent_session is not None:
        lines = await own_lines_of_branch(
            session_store,
            source_agent_session,
            branch_events,
            agent_session,
            cwd,
            source_session_id=source_session_id or session_id,
        )
    if lines is None:
        # CPU work in proportion to the branch (a quarter of a second for 60,000 events): in
        # a thread, so the server's other requests and streams go on meanwhile.
        lines = await asyncio.to_thread(
            transcript_lines,
            branch_events,
            session_id=session_id,
            agent_session=agent_session,
            cwd=cwd,
        )
    if lines:
        bound = session_store.for_session(session_id)
        await bound.append(
            {"project_key": RUNNER_PROJECT_KEY, "session_id": agent_session},
            cast("list[SessionStoreEntry]", lines),
        )
    return len(lines)


async def own_lines_of_branch(
    session_store: LogSessionStore,
    source_agent_session: str,
    branch_events: Sequence[RecordedEvent],
    agent_session: str,
    cwd: str,
    *,
    source_session_id: str,
) -> list[dict[str, Any]] | None:
    """The CLI's own lines of the turns `branch_events` keeps, from the transcript of
    `source_agent_session`, re-addressed to `agent_session`; None when the store has no such
    transcript, it lacks a kept turn's prompt line (see the module docstring), or it is not
    `source_session_id`'s: an event naming another session's agent session (an imported
    copy's) never reads that session's transcript."""
    found = await branch_reference(
        session_store,
        source_agent_session,
        branch_events,
        agent_session,
        cwd,
        source_session_id=source_session_id,
    )
    return None if found is None else found[0]


async def branch_reference(
    session_store: LogSessionStore,
    source_agent_session: str,
    branch_events: Sequence[RecordedEvent],
    agent_session: str,
    cwd: str,
    *,
    source_session_id: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """`own_lines_of_branch`, and the reference line that stands for those lines in the new
    transcript (agentlog.infra.agent.transcripts.references)."""
    if await session_store.owner(source_agent_session) != source_session_id:
        return None
    entries = await session_store.load(
        {"project_key": RUNNER_PROJECT_KEY, "session_id": source_agent_session}
    )
    if not entries:
        return None
    kept = {
        prompt_uuid(r.event.run_id)
        for r in branch_events
        if isinstance(r.event, RunStarted)
        and r.event.run_id is not None
        and r.event.continues_run_id is None  # a continuation has no prompt line of its own
    }
    lines = cast("list[dict[str, Any]]", entries)
    through = kept_through(lines, kept)
    if through is None:
        return None
    return (
        rebased(lines[:through], agent_session, cwd),
        prefix_reference(source_agent_session, through, cwd),
    )


def kept_turns(
    entries: Sequence[dict[str, Any]], kept_prompts: set[str], agent_session: str, cwd: str
) -> list[dict[str, Any]] | None:
    """The lines before the first prompt line that is not in `kept_prompts` (lines without a
    uuid, the CLI's own bookkeeping, and subagents' sidechain lines left out), with the new
    session id and working directory; None unless every kept prompt was among them."""
    through = kept_through(entries, kept_prompts)
    return None if through is None else rebased(entries[:through], agent_session, cwd)


def kept_through(entries: Sequence[dict[str, Any]], kept_prompts: set[str]) -> int | None:
    """How many of `entries` the kept turns span: up to the first prompt line not in
    `kept_prompts`; None unless every kept prompt was among them."""
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        line_id = entry.get("uuid")
        if not isinstance(line_id, str) or entry.get("isSidechain"):
            continue
        if _is_prompt(entry):
            if line_id not in kept_prompts:
                return n if seen == kept_prompts else None
            seen.add(line_id)
    return len(entries) if seen == kept_prompts else None


def _is_prompt(entry: dict[str, Any]) -> bool:
    """A person's prompt line: a user line that is not a tool result, a meta line the CLI
    adds, or its own marker of an interrupted turn."""
    if entry.get("type") != "user" or entry.get("isMeta") or "toolUseResult" in entry:
        return False
    message = entry.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return not content.startswith(CANCELLED_MARKER)
    if isinstance(content, list):
        kinds = {b.get("type") for b in content if isinstance(b, dict)}
        if "tool_result" in kinds:
            return False
        texts = [b.get("text", "") for b in content if isinstance(b, dict)]
        return not any(str(t).startswith(CANCELLED_MARKER) for t in texts)
    return False


def previous_agent_session(
    history: Sequence[RecordedEvent], before_seq: int, agent_session: str, session_id: str
) -> str | None:
    """The agent session the turns before a branch point were mirrored into: that of the
    latest run before `before_seq` (on any branch: a rewind's old branch) if it is another
    than `agent_session`."""
    for recorded in reversed(history):
        if recorded.seq < before_seq and isinstance(recorded.event, RunStarted):
            found = recorded.event.agent_session or agent_session_id(session_id)
            return found if found != agent_session else None
    return None
