"""A branch's transcript by reference: the kept turns are stored once, in the transcript they
were mirrored into, and a rewind's new branch stores one line that points at them.

A rewind (regenerate, edit) keeps the CLI's own lines of the turns before its branch point
(`branching.kept_through`): a prefix of the old branch's transcript, with every line
re-addressed to the new agent session. Instead of a copy of those lines, the new transcript
starts with a reference line, `{"type": "agentlog-prefix", "source", "through", "cwd"}`: the
first `through` entries of the `source` transcript (itself expanded first: a branch of a
branch), kept and re-addressed as the copy would have been (`rebased`). So a regenerate stores
the new turn's lines only, however long the conversation before it.

The reference never leaves agentlog: `LogSessionStore` expands it on every read (the SDK's
`load` for a resume, `transcripts_of` for an export or a fork), so the CLI, an export and a
fork's copy see the whole transcript. A reference only ever points at a transcript of the same
agentlog session (deleting the session deletes both; an import gets the expanded lines).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

REFERENCE_TYPE = "agentlog-prefix"
# A chain of branches longer than this is a corrupted store, not a conversation: refused.
_MAX_DEPTH = 10_000


def prefix_reference(source: str, through: int, cwd: str) -> dict[str, Any]:
    """The line standing for the first `through` entries of `source`'s transcript, kept."""
    return {"type": REFERENCE_TYPE, "source": source, "through": through, "cwd": cwd}


def is_reference(entry: dict[str, Any]) -> bool:
    return entry.get("type") == REFERENCE_TYPE and "uuid" not in entry


def rebased(
    entries: Sequence[dict[str, Any]], agent_session: str, cwd: str
) -> list[dict[str, Any]]:
    """The lines a branch keeps of `entries`: those with a uuid that are not a subagent's
    sidechain (lines without one are the CLI's own bookkeeping), each with the branch's
    session id and working directory."""
    lines: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry.get("uuid"), str) or entry.get("isSidechain"):
            continue
        line = {**entry, "sessionId": agent_session}
        if "cwd" in line:
            line["cwd"] = cwd
        lines.append(line)
    return lines


# load_source(agent session) -> its stored entries (None: no such transcript)
SourceLoader = Callable[[str], Awaitable[list[dict[str, Any]] | None]]


async def expanded(
    entries: list[dict[str, Any]], agent_session: str, load_source: SourceLoader
) -> list[dict[str, Any]]:
    """`entries` with each reference replaced by the lines it stands for (recursively)."""
    return await _expanded(entries, agent_session, load_source, 0)


async def _expanded(
    entries: list[dict[str, Any]], agent_session: str, load_source: SourceLoader, depth: int
) -> list[dict[str, Any]]:
    if not any(is_reference(entry) for entry in entries):
        return entries  # every transcript but a branch's: no copy, no allocation
    if depth > _MAX_DEPTH:
        raise ValueError(f"transcript {agent_session}: references nest too deep (a cycle?)")
    out: list[dict[str, Any]] = []
    for entry in entries:
        if not is_reference(entry):
            out.append(entry)
            continue
        source = str(entry["source"])
        stored = await load_source(source) or []
        whole = await _expanded(stored, source, load_source, depth + 1)
        out.extend(rebased(whole[: int(entry["through"])], agent_session, str(entry["cwd"])))
    return out
