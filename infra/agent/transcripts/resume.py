"""What a run resumes: the agent session's transcript in the store, made ready before the CLI
starts.

The SDK loads the transcript from the run's `LogSessionStore` itself (`resume=`), but first the
runner makes sure the store holds what the CLI must see:
- the first run of a branch (after a rewind) keeps the CLI's own lines of the turns it keeps
  from the old branch's transcript (`branching.branch_reference`), stored as a reference to
  them, not a copy (`references.py`);
- a session recorded before the store kept transcripts (its log has runs, the store nothing),
  or a branch whose turns cannot be cut from the old transcript, is converted once from its
  events (`transcript.transcript_lines` over the current branch) and appended; every later
  run finds it and resumes normally;
- a transcript behind the log (a crash mid-turn, a server killed during an approval's grace)
  is repaired by appending what the log says is missing (`transcript_repair.py`).
The transcript read here is handed to the SDK's own load (`LogSessionStore.prime`), so a run
start reads it once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any, cast

from claude_agent_sdk.types import SessionKey, SessionStoreEntry

from agentlog.domain.events import RecordedEvent
from agentlog.domain.rules.branches import current_branch
from agentlog.infra.agent.run.recorder import RunStore
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.agent.transcripts.branching import branch_reference, previous_agent_session
from agentlog.infra.agent.transcripts.conversion import transcript_lines
from agentlog.infra.agent.transcripts.repair import missing_lines, unexplained

log = logging.getLogger(__name__)


def transcript_key(agent_session: str) -> SessionKey:
    return {"project_key": RUNNER_PROJECT_KEY, "session_id": agent_session}


async def ready_transcript(
    transcripts: LogSessionStore,
    store: RunStore,
    *,
    session_id: str,
    agent_session: str,
    cwd: str,
    start_seq: int,
    has_earlier_runs: bool,
    recent: Sequence[RecordedEvent],
) -> bool:
    """Make the store's transcript of `agent_session` what the run must resume from; True
    when there is one to resume (else the run starts the agent session).

    `transcripts` is bound to `session_id`; `recent` is the log from the latest earlier run's
    start on (what can be missing from the transcript); `has_earlier_runs` says whether the
    log has runs before this one (`start_seq`), which a missing transcript must be made of."""
    key = transcript_key(agent_session)
    entries = cast("list[dict[str, Any]] | None", await transcripts.load(key))
    if not entries and has_earlier_runs:
        # Recorded before the store kept transcripts: the one read of the whole log.
        history = await store.read_session(session_id, after=0)
        branch = current_branch(r for r in history if r.seq < start_seq)
        # A rewind's first run: the CLI's own lines of the turns kept, where they can be cut.
        source = previous_agent_session(history, start_seq, agent_session, session_id)
        own = (
            None
            if source is None
            else await branch_reference(
                transcripts, source, branch, agent_session, cwd, source_session_id=session_id
            )
        )
        if own is not None:
            # Stored as a reference to the old branch's lines, not a copy (references.py).
            entries, reference = own
            await transcripts.append_reference(key, reference, entries)
            log.info("session %s: the branch keeps %d transcript lines", session_id, len(entries))
        else:
            entries = transcript_lines(
                branch, session_id=session_id, agent_session=agent_session, cwd=cwd
            )
            if entries:
                await transcripts.append(key, cast("list[SessionStoreEntry]", entries))
                log.info(
                    "session %s: converted its log to %d transcript lines",
                    session_id,
                    len(entries),
                )
    if not entries:
        return False
    # Only the current branch: after a rewind, the runs it set aside are not this transcript's.
    behind = current_branch(r for r in recent if r.seq < start_seq)
    # Both checks walk the whole transcript (every call in a long conversation): in a thread,
    # so the event loop serves other requests meanwhile.
    whole_log = bool(await asyncio.to_thread(unexplained, entries, behind))
    if whole_log:
        # The gap is older than the latest run (a run after the crash mirrored nothing), or
        # the log never recorded the call: read the session once; the repair closes it.
        history = await store.read_session(session_id, after=0)
        behind = current_branch(r for r in history if r.seq < start_seq)
    repair = await asyncio.to_thread(
        functools.partial(
            missing_lines,
            entries,
            behind,
            agent_session=agent_session,
            cwd=cwd,
            whole_log=whole_log,
        )
    )
    if repair:
        await transcripts.append(key, cast("list[SessionStoreEntry]", repair))
        entries = [*entries, *repair]
        log.info("session %s: transcript repaired from the log (%d lines)", session_id, len(repair))
    transcripts.prime(agent_session, entries)
    return True
