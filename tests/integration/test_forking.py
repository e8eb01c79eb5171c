"""Forking a session on SQLite and PostgreSQL: the fork's log is the source's current branch up
to the fork point, renumbered, then `session_forked`; its messages, run index and transcript
are its own; refused fork points write nothing; the source never changes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentlog.domain.errors import (
    ForkApprovalPending,
    ForkInsideRun,
    ForkPointOutOfRange,
    SessionAlreadyExists,
    SessionDeleted,
    UnknownSession,
)
from agentlog.domain.events import (
    ConversationRewound,
    CustomEventRecorded,
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionForked,
    StepStarted,
    TextCompleted,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.branches import current_branch
from agentlog.infra.agent.sdk.session_store import LogSessionStore
from agentlog.infra.agent.transcripts.branching import RUNNER_PROJECT_KEY, fork_agent_session
from agentlog.infra.sessions import forking
from agentlog.infra.sessions.deletion import delete_log
from agentlog.infra.sessions.forking import SessionIdRetired, fork_session
from agentlog.infra.sessions.importing import export_lines, import_session, parse_export
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.projections import ui_messages
from tests.integration.projection_helpers import a_run

CWD = "/tmp/agentlog-fork-test"
POSITION = re.compile(rb',"position":\d+')


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agentlog.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(url: str) -> AsyncIterator[StoreBase]:
    async with open_store(url) as opened:
        yield opened


def a_turn(run_id: str, prompt: str, answer: str) -> list[Any]:
    """A run that says `answer` to `prompt`, with one tool call."""
    return [
        RunStarted(run_id=run_id, prompt=prompt),
        StepStarted(run_id=run_id, message_id=f"{run_id}-m"),
        TextCompleted(run_id=run_id, message_id=f"{run_id}-m", block_index=0, text=answer),
        ToolCallStarted(run_id=run_id, tool_call_id=f"{run_id}-c", tool_name="Read"),
        ToolCallSucceeded(run_id=run_id, tool_call_id=f"{run_id}-c", output="ok"),
        RunFinished(run_id=run_id, result=answer),
    ]


async def two_turns(store: StoreBase, session_id: str = "src") -> tuple[int, int]:
    """A session with two turns and a custom event between them: (end of turn 1, head)."""
    await store.append(session_id, [SessionCreated(title="source")])
    first = await store.append(session_id, a_turn("r1", "remember 42", "Got it: 42"))
    await store.append(session_id, [CustomEventRecorded(name="note", data={"n": 1})])
    second = await store.append(session_id, a_turn("r2", "remember 7", "Got it: 7"))
    return first[-1], second[-1]


async def everything(store: StoreBase, session_id: str) -> list[bytes]:
    return [line async for line in export_lines(store, session_id)]


def messages(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    return ui_messages.to_ui_messages(ui_messages.fold(events), run_active=False)


async def test_the_fork_is_the_source_up_to_at_seq_renumbered_then_session_forked(
    store: StoreBase,
) -> None:
    end_of_turn_1, _ = await two_turns(store)
    source_before = await everything(store, "src")
    made = await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)

    source = await store.read_session("src")
    fork = await store.read_session("fork")
    assert made.copied == end_of_turn_1 and not made.repeated
    assert [r.seq for r in fork] == list(range(1, end_of_turn_1 + 2))
    # Copies: same types, run ids, payloads and times; run_started names the fork's session.
    agent_session = fork_agent_session("fork")
    for copy, original in zip(fork[:-1], source[:end_of_turn_1], strict=True):
        assert copy.time == original.time
        expected = original.event
        if isinstance(expected, RunStarted):
            assert isinstance(copy.event, RunStarted)
            assert copy.event.agent_session == agent_session
            expected = msgspec.structs.replace(expected, agent_session=agent_session)
        assert copy.event == expected
    assert fork[-1].event == SessionForked(
        from_session_id="src", at_seq=end_of_turn_1, agent_session=agent_session
    )
    # The source is unchanged, byte for byte.
    assert await everything(store, "src") == source_before
    assert (await verify_log(store, None)).problems == []


async def test_the_fork_messages_equal_the_source_messages_at_the_fork_point(
    store: StoreBase,
) -> None:
    end_of_turn_1, head = await two_turns(store)
    for at_seq, new_id in [(end_of_turn_1, "f1"), (end_of_turn_1 + 1, "f2"), (head, "f3")]:
        await fork_session(store, "src", at_seq, new_id, cwd=CWD)
        source = await store.read_session("src")
        assert messages(await store.read_session(new_id)) == messages(source[:at_seq])
    shown = messages(await store.read_session("f1"))
    assert [m["id"] for m in shown] == ["r1:user", "r1"]


async def test_the_fork_run_index_holds_its_copied_runs_as_ended(store: StoreBase) -> None:
    _, head = await two_turns(store)
    await fork_session(store, "src", head, "fork", cwd=CWD)
    fork = await store.read_session("fork")
    starts = {r.event.run_id: r.seq for r in fork if isinstance(r.event, RunStarted)}
    ends = {r.event.run_id: r.seq for r in fork if isinstance(r.event, RunFinished)}
    for run_id in ("r1", "r2"):
        indexed = await store.run("fork", run_id)
        assert indexed is not None
        assert (indexed.started_seq, indexed.ended_seq) == (starts[run_id], ends[run_id])
    current = await store.current_run("fork")
    assert current is not None and current.run_id == "r2" and current.ended_seq is not None
    assert all(r.session_id != "fork" for r in await store.open_runs())
    # The fork takes appends after its own head, like any session.
    assert await store.append("fork", [CustomEventRecorded(name="after")]) == [len(fork) + 1]


async def test_a_fork_point_inside_a_run_is_refused_naming_the_run_and_writes_nothing(
    store: StoreBase,
) -> None:
    end_of_turn_1, head = await two_turns(store)
    start_of_turn_2 = end_of_turn_1 + 2
    position = await store.last_position()
    for at_seq in range(start_of_turn_2, head):
        with pytest.raises(ForkInsideRun) as refused:
            await fork_session(store, "src", at_seq, "fork", cwd=CWD)
        assert refused.value.details == {
            "session_id": "src",
            "at_seq": at_seq,
            "run_id": "r2",
            "run_started_seq": start_of_turn_2,
            "run_ended_seq": head,
            "fork_before": start_of_turn_2 - 1,
            "fork_from": head,
        }
    assert await store.session("fork") is None
    assert await store.last_position() == position
    assert await LogSessionStore(store).transcripts_of("fork") == []
    # Right before the run and right at its end are fork points.
    await fork_session(store, "src", start_of_turn_2 - 1, "before", cwd=CWD)
    await fork_session(store, "src", head, "after", cwd=CWD)


async def test_a_session_with_an_active_run_forks_before_that_run_only(store: StoreBase) -> None:
    await two_turns(store)
    [started] = await store.append("src", [RunStarted(run_id="r3", prompt="still going")])
    await store.append("src", [TextCompleted(run_id="r3", message_id="m", text="...")])
    with pytest.raises(ForkInsideRun) as refused:
        await fork_session(store, "src", started + 1, "fork", cwd=CWD)
    assert refused.value.details["run_ended_seq"] is None
    assert "has not ended yet" in str(refused.value)
    made = await fork_session(store, "src", started - 1, "fork", cwd=CWD)
    assert made.copied == started - 1


async def test_bad_fork_requests_are_refused_and_the_log_is_untouched(store: StoreBase) -> None:
    end_of_turn_1, head = await two_turns(store)
    await store.append("other", [SessionCreated()])
    await store.append("gone", [SessionCreated()])
    await delete_log(store, "gone", "requested")
    await store.append("gone-source", [SessionCreated()])
    await delete_log(store, "gone-source", "requested")
    position = await store.last_position()
    source = await everything(store, "src")

    for at_seq in (0, -1, head + 1):
        with pytest.raises(ForkPointOutOfRange) as out_of_range:
            await fork_session(store, "src", at_seq, "fork", cwd=CWD)
        assert out_of_range.value.details == {"session_id": "src", "at_seq": at_seq, "head": head}
    with pytest.raises(UnknownSession):
        await fork_session(store, "nobody", 1, "fork", cwd=CWD)
    with pytest.raises(SessionDeleted):
        await fork_session(store, "gone-source", 1, "fork", cwd=CWD)
    with pytest.raises(SessionAlreadyExists):
        await fork_session(store, "src", end_of_turn_1, "other", cwd=CWD)
    with pytest.raises(SessionIdRetired, match="was deleted"):
        await fork_session(store, "src", end_of_turn_1, "gone", cwd=CWD)

    assert await store.last_position() == position
    assert await everything(store, "src") == source
    assert await store.session("fork") is None
    assert [len(await store.read_session(s)) for s in ("other", "gone")] == [1, 1]
    assert await LogSessionStore(store).transcripts_of("other") == []


async def test_a_fork_point_where_an_approval_waits_is_refused(store: StoreBase) -> None:
    await store.append("src", [SessionCreated()])
    seqs = await store.append(
        "src",
        [
            RunStarted(run_id="r1", prompt="publish"),
            ToolCallStarted(run_id="r1", tool_call_id="c1", tool_name="mcp__demo__publish"),
            ToolApprovalRequested(
                run_id="r1", approval_id="a1", tool_call_id="c1", tool_name="mcp__demo__publish"
            ),
            RunFinished(run_id="r1", result="", deferred_tool_call_id="c1"),
        ],
    )
    answered = await store.append(
        "src", [ToolApprovalResponded(approval_id="a1", tool_call_id="c1", approved=True)]
    )
    continued = await store.append(
        "src",
        [
            RunStarted(run_id="r2", prompt="", continues_run_id="r1"),
            ToolCallSucceeded(run_id="r2", tool_call_id="c1", output="published"),
            RunFinished(run_id="r2", result="done"),
        ],
    )
    for at_seq in (seqs[-1], answered[0]):  # asked, then answered but not yet continued
        with pytest.raises(ForkApprovalPending) as refused:
            await fork_session(store, "src", at_seq, "fork", cwd=CWD)
        assert refused.value.details["approval_ids"] == ["a1"]
        assert refused.value.details["fork_before"] == seqs[0] - 1
    assert await store.session("fork") is None
    made = await fork_session(store, "src", continued[-1], "fork", cwd=CWD)
    assert made.copied == continued[-1]


async def test_a_fork_copies_the_current_branch_only_and_renumbers_rewinds(
    store: StoreBase,
) -> None:
    end_of_turn_1, head = await two_turns(store)
    rewind = ConversationRewound(to_seq=end_of_turn_1, agent_session="src-branch-2")
    await store.append("src", [rewind, *a_turn("r3", "remember 9", "Got it: 9")])
    source = await store.read_session("src")
    branch = current_branch(source)
    assert [r.run_id for r in branch if isinstance(r.event, RunStarted)] == ["r1", "r3"]

    await fork_session(store, "src", len(source), "fork", cwd=CWD)
    fork = await store.read_session("fork")
    assert len(fork) == len(branch) + 1
    assert [r.type for r in fork[:-1]] == [r.type for r in branch]
    [copied_rewind] = [r for r in fork if isinstance(r.event, ConversationRewound)]
    assert isinstance(copied_rewind.event, ConversationRewound)
    # It sets nothing aside in the fork: every event before it is the branch it kept.
    assert copied_rewind.event.to_seq == copied_rewind.seq - 1
    assert copied_rewind.event.agent_session == fork_agent_session("fork")
    assert current_branch(fork) == fork
    assert messages(fork) == messages(branch)
    # Inside the discarded run, the branch as of then is what counts: refused like any run.
    with pytest.raises(ForkInsideRun):
        await fork_session(store, "src", head - 1, "fork-2", cwd=CWD)


async def test_the_fork_transcript_is_the_fork_own_and_deletes_are_independent(
    store: StoreBase,
) -> None:
    end_of_turn_1, head = await two_turns(store)
    sessions = LogSessionStore(store)
    made = await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    [transcript] = await sessions.transcripts_of("fork")
    assert transcript.key.project_key == RUNNER_PROJECT_KEY
    assert transcript.key.agent_session_id == fork_agent_session("fork")
    assert made.transcript_entries == len(transcript.entries) > 0
    said = msgspec.json.encode(transcript.entries)
    assert b"remember 42" in said and b"remember 7" not in said
    assert all(e["sessionId"] == fork_agent_session("fork") for e in transcript.entries)

    other = await fork_session(store, "src", head, "fork-2", cwd=CWD)
    assert other.transcript_entries > made.transcript_entries
    source_before = await everything(store, "src")
    await delete_log(store, "fork", "requested")
    assert await everything(store, "src") == source_before
    assert await sessions.transcripts_of("fork") == []
    fork_2 = await everything(store, "fork-2")
    await delete_log(store, "src", "requested")
    assert await everything(store, "fork-2") == fork_2
    assert len(await sessions.transcripts_of("fork-2")) == 1


async def test_the_same_fork_again_answers_the_fork_and_completes_a_missing_transcript(
    store: StoreBase,
) -> None:
    end_of_turn_1, head = await two_turns(store)
    sessions = LogSessionStore(store)
    await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    written = await everything(store, "fork")
    [transcript] = await sessions.transcripts_of("fork")
    # As if the process died between the log and the transcript.
    await sessions.delete_session("fork")

    again = await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    assert again.repeated and again.transcript_entries == len(transcript.entries)
    assert await everything(store, "fork") == written
    [rewritten] = await sessions.transcripts_of("fork")
    assert rewritten.entries == transcript.entries
    # Once more: the transcript is there, nothing is written twice.
    assert (
        await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    ).transcript_entries == 0
    [kept] = await sessions.transcripts_of("fork")
    assert len(kept.entries) == len(transcript.entries)
    # Another fork point under the same id is another request: refused.
    with pytest.raises(SessionAlreadyExists):
        await fork_session(store, "src", head, "fork", cwd=CWD)


async def test_fields_this_version_does_not_know_survive_a_fork(store: StoreBase) -> None:
    await store.append("seed", [SessionCreated()])
    await store.append("seed", a_run("r1", tools=1, words=1))
    lines = await everything(store, "seed")
    marked = [
        line.replace(b',"type":"run_started"', b',"type":"run_started","newer":[1]')
        for line in lines
    ]
    await import_session(store, parse_export(marked, rename_to="src"))
    await fork_session(store, "src", len(lines), "fork", cwd=CWD)
    exported = b"".join(await everything(store, "fork"))
    assert b'"newer":[1]' in exported
    assert f'"agent_session":"{fork_agent_session("fork")}"'.encode() in exported


async def test_a_fork_exports_and_imports_like_any_session(store: StoreBase) -> None:
    end_of_turn_1, _ = await two_turns(store)
    await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    lines = await everything(store, "fork")
    await import_session(store, parse_export(lines, rename_to="fork-copy"))
    copy = await everything(store, "fork-copy")

    def events_of(export: list[bytes]) -> list[bytes]:
        # The event lines (an export may also carry the session's transcripts after them).
        return [POSITION.sub(b"", line) for line in export if line.startswith(b'{"seq":')]

    renamed = [line.replace(b'"fork-copy"', b'"fork"') for line in events_of(copy)]
    assert renamed == events_of(lines) and len(renamed) == end_of_turn_1 + 1
    assert (await verify_log(store, None)).problems == []


async def test_a_transcript_that_could_not_be_written_is_refused_and_completed_on_retry(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    end_of_turn_1, _ = await two_turns(store)
    real = forking.write_branch_transcript

    async def fails(*args: Any, **kwargs: Any) -> int:
        raise OSError("the database went away")

    monkeypatch.setattr(forking, "write_branch_transcript", fails)
    with pytest.raises(forking.ForkIncomplete) as refused:
        await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    assert refused.value.details == {"session_id": "fork"}
    assert refused.value.http_status == 503 and "\"id\": 'fork'" in str(refused.value)
    # The fork exists, usable (its log is whole), without its transcript.
    assert await store.head("fork") == end_of_turn_1 + 1
    assert await LogSessionStore(store).transcripts_of("fork") == []

    monkeypatch.setattr(forking, "write_branch_transcript", real)
    again = await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    assert again.repeated and again.transcript_entries > 0
    assert len(await LogSessionStore(store).transcripts_of("fork")) == 1


async def test_a_fork_of_a_fork_is_the_conversation_up_to_its_point(store: StoreBase) -> None:
    _, head = await two_turns(store)
    await fork_session(store, "src", head, "child", cwd=CWD)
    await store.append("child", a_turn("r3", "remember 5", "Got it: 5"))
    child = await store.read_session("child")
    await fork_session(store, "child", len(child), "grandchild", cwd=CWD)
    grandchild = await store.read_session("grandchild")
    assert messages(grandchild) == messages(child)
    forks = [r.event for r in grandchild if isinstance(r.event, SessionForked)]
    assert [(f.from_session_id, f.at_seq) for f in forks] == [("src", head), ("child", len(child))]
    said = msgspec.json.encode(
        (await LogSessionStore(store).transcripts_of("grandchild"))[0].entries
    )
    assert all(f"remember {n}".encode() in said for n in (42, 7, 5))


async def test_a_source_deleted_while_it_is_being_forked_leaves_no_fork(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    end_of_turn_1, _ = await two_turns(store)
    checked: list[str] = []
    real_deleted_at = forking.deleted_at

    async def deleted_right_after_the_check(store: StoreBase, session_id: str) -> Any:
        if not checked:  # the source is deleted between the check and the read
            checked.append(session_id)
            await delete_log(store, session_id, "requested")
            return None
        return await real_deleted_at(store, session_id)

    monkeypatch.setattr(forking, "deleted_at", deleted_right_after_the_check)
    with pytest.raises(SessionDeleted):
        await fork_session(store, "src", end_of_turn_1, "fork", cwd=CWD)
    assert await store.session("fork") is None
