"""Cutting a branch out of the CLI's own transcript: the lines of the turns kept, up to the
first prompt of a turn the branch does not keep, or nothing when a kept prompt is missing."""

from __future__ import annotations

from typing import Any

from agentlog.infra.agent.transcripts.branching import kept_turns
from agentlog.infra.agent.transcripts.conversion import CANCELLED_MARKER, prompt_uuid


def line(kind: str, uuid: str | None, content: Any = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": kind, "sessionId": "old", "cwd": "/old", **extra}
    if uuid is not None:
        entry["uuid"] = uuid
    if content is not None:
        entry["message"] = {"role": "user" if kind == "user" else "assistant", "content": content}
    return entry


A, B = prompt_uuid("run_a"), prompt_uuid("run_b")
TRANSCRIPT = [
    line("queue-operation", None),  # the CLI's bookkeeping: no uuid, never copied
    line("user", A, "Remember 42."),
    line("attachment", "att-1"),
    line("assistant", "as-1", [{"type": "text", "text": "Got it."}]),
    line("user", "int-1", CANCELLED_MARKER),  # the CLI's own marker: not a prompt
    line("user", "meta-1", "<system-reminder>", isMeta=True),
    line("user", "res-1", [{"type": "tool_result", "tool_use_id": "t", "content": "5"}]),
    line("assistant", "side-1", [{"type": "text", "text": "sub"}], isSidechain=True),
    line("user", B, [{"type": "text", "text": "Remember 7."}]),
    line("assistant", "as-2", [{"type": "text", "text": "Got it, 7."}]),
]


def test_the_kept_turns_end_before_the_first_prompt_not_kept() -> None:
    kept = kept_turns(TRANSCRIPT, {A}, "new", "/new")
    assert kept is not None
    assert [e["uuid"] for e in kept] == [A, "att-1", "as-1", "int-1", "meta-1", "res-1"]
    assert {e["sessionId"] for e in kept} == {"new"} and {e["cwd"] for e in kept} == {"/new"}
    assert TRANSCRIPT[1]["sessionId"] == "old"  # the source's lines are left as they were


def test_every_turn_kept_copies_every_line_with_a_uuid_but_sidechains() -> None:
    kept = kept_turns(TRANSCRIPT, {A, B}, "new", "/new")
    assert kept is not None
    assert [e["uuid"] for e in kept][-2:] == [B, "as-2"] and "side-1" not in [
        e["uuid"] for e in kept
    ]


def test_no_turn_kept_is_an_empty_transcript() -> None:
    assert kept_turns(TRANSCRIPT, set(), "new", "/new") == []


def test_a_kept_prompt_the_transcript_lacks_gives_nothing_to_cut() -> None:
    # A transcript written before prompts carried their run's uuid: converted instead.
    assert kept_turns(TRANSCRIPT, {A, prompt_uuid("run_c")}, "new", "/new") is None
    assert kept_turns(TRANSCRIPT, {B}, "new", "/new") is None  # B comes after a prompt not kept
