"""Runs resume through `LogSessionStore`, on SQLite and PostgreSQL, with the real SDK and its
bundled CLI against the scripted model (the runner's tests run it sandboxed, as deployed):

- the CLI's own transcript is what the store keeps (compared with the file the CLI wrote);
- a second run's CLI sees the first turn, resumed from the store on another runner with its
  own workspace root and HOME;
- a session recorded before the store kept transcripts is converted from its events once;
- a transcript behind the log (the CLI was killed mid-tool) is repaired before the resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage

from agentlog.domain.events import (
    AgentStatusReported,
    ConversationRewound,
    RunFinished,
    RunStarted,
    SessionCreated,
    StepStarted,
    TextCompleted,
    ToolApprovalRequested,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.ports.agent_runs import Rewind
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.agent.transcripts import resume as agent_resume
from agentlog.infra.agent.transcripts.conversion import NAMESPACE, agent_session_id, prompt_uuid
from agentlog.infra.sessions.approval_answers import record_answer
from agentlog.infra.sessions.forking import fork_session
from agentlog.infra.sessions.importing import export_lines, import_session, parse_export
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.infra.store.transcripts import TranscriptKey
from tests.conftest import POSTGRES_URL

from .test_approvals import PUBLISH
from .test_runner import (
    LONG_TOOL,
    new_session,
    only,
    run_turn,
    runner_on,
    until_ended,
    until_logged,
)

pytestmark = pytest.mark.slow

REMEMBER = "Remember the number 42."
RECALL = "What number did I ask you to remember?"
RECALLED = "You asked me to remember the number 42."


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def store(url: str) -> AsyncIterator[StoreBase]:
    async with open_store(url) as opened:
        yield opened


async def transcript(store: StoreBase, agent_session: str) -> list[dict[str, Any]]:
    entries = await LogSessionStore(store).load(
        {"project_key": RUNNER_PROJECT_KEY, "session_id": agent_session}
    )
    return [dict(e) for e in entries or []]


def prompts_seen(model: ScriptedModel) -> list[str]:
    """The human-written prompts of the model's newest request, in order."""
    texts: list[str] = []
    for message in model.requests[-1]["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts += [
            b["text"]
            for b in blocks
            if b["type"] == "text" and not b["text"].startswith(("<system-reminder>", "["))
        ]
    return texts


def chain_to(entries: list[dict[str, Any]], leaf: dict[str, Any]) -> list[str]:
    """The uuids from `leaf` back to the transcript's root, through parentUuid."""
    by_id = {e["uuid"]: e for e in entries if isinstance(e.get("uuid"), str)}
    chain, at = [], leaf
    while at is not None:
        chain.append(at["uuid"])
        at = by_id.get(at.get("parentUuid") or "")
    return chain


# -- the store holds the CLI's own transcript ------------------------------------------------


async def test_the_store_holds_the_transcript_the_cli_wrote_and_a_resume_reads_it(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """Straight through the SDK: the lines the CLI wrote to its file are the lines in the
    store, turn 1 (from the run HOME's config directory) and turn 2 (resumed from the store,
    in the SDK's own temporary directory), in a workspace of another name each turn."""
    await store.append("chat", [SessionCreated()])
    bound = LogSessionStore(store).for_session("chat")
    agent = str(uuid.uuid4())
    for turn, prompt in enumerate((REMEMBER, RECALL)):
        home, workspace = tmp_path / f"home{turn}", tmp_path / f"workspace{turn}"
        (home / ".claude").mkdir(parents=True)
        workspace.mkdir()
        before = await transcript(store, agent)
        options = ClaudeAgentOptions(
            env=scripted_model.cli_env(home, CLAUDE_CONFIG_DIR=str(home / ".claude")),
            cwd=str(workspace),
            setting_sources=[],
            model="claude-sonnet-4-5",
            session_store=bound,
            session_store_flush="eager",
            **({"resume": agent} if before else {"session_id": agent}),  # type: ignore[arg-type]
        )
        async with ClaudeSDKClient(options) as client:
            await client.query(prompt)
            results = [m async for m in client.receive_response() if isinstance(m, ResultMessage)]
            # The SDK flushed the mirror before the result; the CLI's file is still there.
            materialized = client._materialized
            config = materialized.config_dir if materialized else home / ".claude"
            [written] = list(config.glob(f"projects/*/{agent}.jsonl"))
            local = [json.loads(line) for line in written.read_text().splitlines()]
        stored = await transcript(store, agent)

        assert (materialized is not None) == (turn == 1)
        assert results[-1].result == (RECALLED if turn else "Got it - I'll remember the number 42.")
        # The conversation (every line with a uuid) is the CLI's, line for line; the lines the
        # CLI keeps to itself (its API request log) are all it wrote that the store lacks.
        assert [e for e in stored if "uuid" in e] == [e for e in local if "uuid" in e]
        assert all(e in local for e in stored)
        assert {e["type"] for e in local if e not in stored} <= {
            "api-request",
            "api-request-blob",
            "api-request-shape",
            "tools-used",
        }
        assert stored[: len(before)] == before  # a resume appends, never rewrites
    assert prompts_seen(scripted_model) == [REMEMBER, RECALL]


# -- the runner ------------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "unconfined"])
async def test_a_second_turn_on_another_runner_resumes_the_first_from_the_store(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, sandbox: bool
) -> None:
    """Sandboxed, the CLI sees the SDK's resume directory (bound at its own path) and the
    SDK finds the lines it writes there; unconfined, the same through `env -i`."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path / "a", sandbox=sandbox) as instance_a:
        first = await run_turn(instance_a, store, session, REMEMBER)
    mirrored = await transcript(store, agent_session_id(session))
    assert mirrored  # the first run's lines reached the store
    async with runner_on(store, scripted_model, tmp_path / "b", sandbox=sandbox) as instance_b:
        second = await run_turn(instance_b, store, session, RECALL)

    [started] = only(second, RunStarted)
    assert started.agent_session == only(first, RunStarted)[0].agent_session
    assert started.agent_session == agent_session_id(session)
    assert only(second, RunFinished)[0].result == RECALLED
    assert prompts_seen(scripted_model) == [REMEMBER, RECALL]
    after = await transcript(store, agent_session_id(session))
    assert after[: len(mirrored)] == mirrored
    user_prompts = [
        e["message"]["content"]
        for e in after
        if e["type"] == "user" and isinstance(e["message"]["content"], str)
    ]
    assert user_prompts == [REMEMBER, RECALL]
    # Each workspace root gives the CLI another project key; the store keeps one.
    cwds = sorted({e["cwd"] for e in after if "cwd" in e})
    assert len(cwds) == 2
    assert cwds[0].startswith(str(tmp_path / "a")) and cwds[1].startswith(str(tmp_path / "b"))


async def test_the_resume_is_written_to_disk_off_the_event_loop(
    sqlite_store: StoreBase,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDK writes a resumed transcript into the CLI's config directory a line at a time
    (~100 ms at 20,000 lines): in a worker thread, not on the loop every request shares."""
    from claude_agent_sdk._internal import session_resume

    from agentlog.infra.agent.sdk import resume_off_loop

    written: list[tuple[bool, bool]] = []  # (on the loop's thread, wrote a directory)
    materialize = session_resume.materialize_resume_session

    async def observed(options: ClaudeAgentOptions) -> Any:
        done = await materialize(options)
        written.append((threading.current_thread() is threading.main_thread(), bool(done)))
        return done

    # Where connect() finds it (imported on each call), and where agentlog's thread calls it.
    monkeypatch.setattr(session_resume, "materialize_resume_session", observed)
    monkeypatch.setattr(resume_off_loop, "materialize_resume_session", observed)
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        await run_turn(runner, sqlite_store, session, REMEMBER)
        second = await run_turn(runner, sqlite_store, session, RECALL)

    assert only(second, RunFinished)[0].result == RECALLED  # the resume worked
    # The second turn's resume was written once, off the loop; connect() wrote nothing.
    assert [w for w in written if w[1]] == [(False, True)]
    assert (True, True) not in written


async def test_a_session_recorded_before_the_store_is_converted_once(
    store: StoreBase,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = await new_session(store)
    # A run as recorded before: no agent session named, no transcript in the store.
    await store.append(
        session,
        [
            RunStarted(run_id="old", prompt=REMEMBER),
            StepStarted(run_id="old", message_id="m-old", model="claude-sonnet-4-5"),
            TextCompleted(run_id="old", message_id="m-old", text="Noted: 42."),
            RunFinished(run_id="old", result="Noted: 42."),
        ],
    )
    assert await transcript(store, agent_session_id(session)) == []
    conversions: list[int] = []
    convert = agent_resume.transcript_lines

    def counted(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        lines = convert(*args, **kwargs)
        conversions.append(len(lines))
        return lines

    monkeypatch.setattr(agent_resume, "transcript_lines", counted)

    async with runner_on(store, scripted_model, tmp_path) as runner:
        first = await run_turn(runner, store, session, RECALL)
        converted = await transcript(store, agent_session_id(session))
        second = await run_turn(runner, store, session, "Say hello")

    assert only(first, RunFinished)[0].result == RECALLED
    assert conversions == [2]  # the old run's prompt and answer, once
    assert only(second, RunFinished)[0].is_error is False
    assert prompts_seen(scripted_model) == [REMEMBER, RECALL, "Say hello"]
    old_lines = converted[:2]
    assert [e["type"] for e in old_lines] == ["user", "assistant"]
    # The prompt line carries its run's prompt uuid (a branch cuts there), the rest stable ids.
    assert old_lines[0]["uuid"] == prompt_uuid("old")
    assert old_lines[1]["uuid"] == str(uuid.uuid5(NAMESPACE, f"{session}:2:1"))
    assert (await transcript(store, agent_session_id(session)))[: len(converted)] == converted


async def test_a_cli_killed_mid_tool_leaves_a_transcript_the_next_run_repairs_from_the_log(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """The killed CLI's tool_use was mirrored, its result never written; the log failed the
    call as interrupted. The next run appends that result before resuming (the API refuses a
    call without one), and the CLI continues the chain from it."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        await run_turn(runner, store, session, REMEMBER)
        started = await runner.start(session, LONG_TOOL)
        events = await until_logged(store, started, ToolCallStarted)
        call = only(events, ToolCallStarted)[0].tool_call_id
        agent = agent_session_id(session)

        async def mirrored() -> None:
            while not any(
                b.get("id") == call
                for e in await transcript(store, agent)
                if e["type"] == "assistant"
                for b in e["message"]["content"]
            ):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(mirrored(), 30)
        for pid in agent_process_ids(started.run_id):  # killing one may end the rest
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await until_logged(store, started, ToolCallFailed)
        while await runner.active_run(session) is not None:
            await asyncio.sleep(0.05)
        [failed] = only(await store.read(session, after=started.offset), ToolCallFailed)
        behind = await transcript(store, agent)

        third = await run_turn(runner, store, session, RECALL)

    assert only(third, RunFinished)[0].result == RECALLED
    after = await transcript(store, agent)
    [repair] = after[len(behind) : len(behind) + 1]
    assert repair["message"]["content"] == [
        {"type": "tool_result", "tool_use_id": call, "content": failed.error_text, "is_error": True}
    ]
    prompt = next(e for e in after if e["type"] == "user" and e["message"]["content"] == RECALL)
    assert repair["uuid"] in chain_to(after, prompt)
    seen = scripted_model.requests[-1]["messages"]
    results = [
        b
        for m in seen
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result" and b.get("tool_use_id") == call
    ]
    assert [r.get("content") for r in results] == [failed.error_text]


async def test_a_deferred_call_whose_lines_never_reached_the_store_is_settled_from_the_log(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """A server killed within the mirror's flush interval after the hook recorded the call:
    the store ends before the call's assistant line (made so here by cutting the stored
    transcript back to the prompt). The continuation adds the call and the CLI's deferral
    from the log, so the resumed CLI asks the hook for that same call, which finds its answer;
    without them it would ask the model again and a new call would wait for a new approval."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path, approval_grace_seconds=0.2) as runner:
        first = await run_turn(runner, store, session, PUBLISH)
        [request] = only(first, ToolApprovalRequested)
        agent = agent_session_id(session)
        whole = await transcript(store, agent)
        prompt_at = next(
            i for i, e in enumerate(whole) if e["type"] == "user" and e["message"]["content"]
        )
        sessions = LogSessionStore(store).for_session(session)
        key = {"project_key": RUNNER_PROJECT_KEY, "session_id": agent}
        await sessions.delete(key)  # type: ignore[arg-type]
        await sessions.append(key, whole[: prompt_at + 1])  # type: ignore[arg-type]
        await record_answer(store, session, request.approval_id, approved=True, reason=None)
        started = await runner.continue_after_approval(session)
        assert started is not None
        second = await until_ended(runner, store, started)

    [output] = only(second, ToolCallSucceeded)
    assert output.tool_call_id == request.tool_call_id
    assert not only(second, ToolApprovalRequested)  # no new call, no new approval
    assert not only(second, RunFinished)[0].is_error
    repaired = await transcript(store, agent)
    kinds = [e["type"] for e in repaired[prompt_at + 1 : prompt_at + 3]]
    assert kinds == ["assistant", "attachment"]
    assert repaired[prompt_at + 2]["attachment"]["toolUseID"] == request.tool_call_id


async def test_an_imported_session_resumes_with_its_transcript_and_a_copy_with_its_own(
    store: StoreBase,
    url: str,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exported and imported into another database, the session's next run resumes the CLI's
    own transcript (no conversion). A copy imported beside its original (another name, same
    database) never shares the original's: its run goes on in an agent session of its own."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path / "a") as runner:
        await run_turn(runner, store, session, REMEMBER)
    exported = [line async for line in export_lines(store, session)]
    conversions: list[int] = []
    convert = agent_resume.transcript_lines
    monkeypatch.setattr(
        agent_resume,
        "transcript_lines",
        lambda *a, **k: conversions.append(1) or convert(*a, **k),  # type: ignore[func-returns-value]
    )
    other_url = (
        f"sqlite:///{tmp_path / 'other.db'}"
        if url.startswith("sqlite")
        else url.replace("?schema=", "?schema=o")
    )
    try:
        async with open_store(other_url) as other:
            await import_session(other, parse_export(exported))
            async with runner_on(other, scripted_model, tmp_path / "b") as runner:
                moved = await run_turn(runner, other, session, RECALL)
        assert only(moved, RunFinished)[0].result == RECALLED
        assert only(moved, RunStarted)[0].agent_session == agent_session_id(session)
        assert conversions == []

        await import_session(store, parse_export(exported, rename_to="copy"))
        async with runner_on(store, scripted_model, tmp_path / "c") as runner:
            copied = await run_turn(runner, store, "copy", RECALL)
        assert only(copied, RunFinished)[0].result == RECALLED  # converted from its events
        assert conversions == [1]
        [started] = only(copied, RunStarted)
        assert started.agent_session != agent_session_id(session)
        sessions = LogSessionStore(store)
        assert await sessions.owner(started.agent_session) == "copy"
        assert await sessions.owner(agent_session_id(session)) == session
    finally:
        if not url.startswith("sqlite"):
            conn = await asyncpg.connect(POSTGRES_URL)
            try:
                schema = other_url.split("?schema=")[1]
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


async def test_a_transcript_the_store_could_not_take_is_reported_in_the_log(
    store: StoreBase,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDK retries a failed append three times, then drops the batch and says so: the run
    goes on (the CLI's file is whole) and the log records the SDK's `mirror_error`."""

    async def refuse(self: LogSessionStore, key: Any, entries: Any) -> None:
        raise RuntimeError("the transcript tables are unavailable")

    monkeypatch.setattr(LogSessionStore, "append", refuse)
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        events = await run_turn(runner, store, session, REMEMBER)

    assert not only(events, RunFinished)[0].is_error
    errors = [e for e in only(events, AgentStatusReported) if e.subtype == "mirror_error"]
    assert errors and "unavailable" in errors[0].data["error"]


def test_the_sdk_copies_no_credentials_of_the_server_into_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK seeds its resume directory from CLAUDE_CONFIG_DIR of options.env, else the
    server's ~/.claude: the runner names the run HOME's, so nothing of the operator's comes."""
    from claude_agent_sdk._internal.session_resume import _copy_auth_files

    from agentlog.infra.agent.config import AgentConfig
    from agentlog.infra.agent.run.home import prepare_run_home
    from agentlog.infra.agent.sdk.options import agent_options

    operator = tmp_path / "operator"
    (operator / ".claude").mkdir(parents=True)
    (operator / ".claude" / ".credentials.json").write_text('{"secret": "operator"}')
    (operator / ".claude.json").write_text('{"secret": "operator"}')
    monkeypatch.setenv("HOME", str(operator))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    home = prepare_run_home(tmp_path / "ws", tmp_path / "homes", "s", "run_1")
    options: Callable[..., Any] = agent_options
    built = options(
        AgentConfig(),
        run_id="run_1",
        home=home,
        agent_session=str(uuid.uuid4()),
        resume=True,
        session_store=object(),
        hooks={},
        mcp_servers={},
        stderr=print,
        base_url="http://127.0.0.1:9",
    )
    seeded = tmp_path / "seeded"
    seeded.mkdir()
    _copy_auth_files(seeded, built.env)
    assert built.env["CLAUDE_CONFIG_DIR"] == str(home.home / ".claude")
    assert list(seeded.iterdir()) == []
    # Without it, the operator's files would be copied: the check above could fail.
    _copy_auth_files(seeded, {})
    assert sorted(p.name for p in seeded.iterdir()) == [".claude.json", ".credentials.json"]


# -- branches --------------------------------------------------------------------------------


async def test_each_regenerate_stores_its_new_lines_and_a_reference_to_the_kept_ones(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """Turn 1 remembers 42, turn 2 asks for it; turn 2 is regenerated twice. Each branch's
    transcript stores one reference line and its own turn's lines, not a copy of turn 1's;
    read back (a resume, an export) it is the whole kept history, and the model got it."""
    session = await new_session(store)
    branches: list[str] = []
    async with runner_on(store, scripted_model, tmp_path) as runner:
        first = await run_turn(runner, store, session, REMEMBER)
        await run_turn(runner, store, session, RECALL)
        for _ in range(2):
            rewind = Rewind(to_seq=first[-1].seq, trigger="regenerate")
            rewound = await until_ended(
                runner, store, await runner.start(session, RECALL, rewind=rewind)
            )
            # The resumed CLI sent the model turn 1 (and no earlier answer to turn 2).
            assert only(rewound, RunFinished)[0].result == RECALLED
            assert prompts_seen(scripted_model) == [REMEMBER, RECALL]
            branches.append(only(rewound, ConversationRewound)[0].agent_session)

    tables = store.backend.transcript_tables()
    original = await transcript(store, agent_session_id(session))
    first_prompt = prompt_uuid(only(first, RunStarted)[0].run_id or "")
    cut = next(
        i
        for i, e in enumerate(original)
        if e["type"] == "user"
        and isinstance(e.get("message", {}).get("content"), str)
        and e.get("uuid") not in (None, first_prompt)
    )
    kept = [e["uuid"] for e in original[:cut] if "uuid" in e and not e.get("isSidechain")]
    exported = {
        t.key.agent_session_id: t.entries
        for t in await LogSessionStore(store).transcripts_of(session)
    }
    for branch in branches:
        stored = await tables.load(TranscriptKey(RUNNER_PROJECT_KEY, branch, ""))
        whole = await transcript(store, branch)
        assert stored is not None
        # Stored: the reference, then the regenerated turn's lines only.
        assert stored[0]["type"] == "agentlog-prefix"
        assert stored[1:] == whole[len(kept) :]
        assert len(stored) == 1 + len(whole) - len(kept)
        # Read back: the kept lines, re-addressed to the branch, once each.
        assert [e["uuid"] for e in whole[: len(kept)]] == kept
        assert {e["sessionId"] for e in whole} == {branch}
        uuids = [e["uuid"] for e in whole if "uuid" in e]
        assert len(uuids) == len(set(uuids))
        assert exported[branch] == whole
    # The second branch's reference points at the first branch, itself a reference.
    second = await tables.load(TranscriptKey(RUNNER_PROJECT_KEY, branches[1], ""))
    assert second is not None and second[0]["source"] == branches[0]
    # A fork of the regenerated session gets the lines themselves, the kept ones included.
    fork = await fork_session(
        store, session, await store.head(session), "s-fork", cwd=str(tmp_path / "fork")
    )
    forked = await tables.load(TranscriptKey(RUNNER_PROJECT_KEY, fork.agent_session, ""))
    assert forked is not None and not any(e["type"] == "agentlog-prefix" for e in forked)
    latest = await transcript(store, branches[1])
    assert [e.get("uuid") for e in forked] == [e["uuid"] for e in latest if "uuid" in e]
    # An export holds the lines, never a reference.
    exported_lines = [line async for line in export_lines(store, session)]
    assert not any(b"agentlog-prefix" in line for line in exported_lines)
    entries = [json.loads(line)["entry"] for line in exported_lines if b'"transcript"' in line]
    assert len(entries) == sum(len(v) for v in exported.values())


async def test_a_rewinds_branch_resumes_from_the_clis_own_lines_of_the_turns_it_keeps(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """Turn 1 remembers 42, turn 2 remembers 7; rewinding to the end of turn 1 copies turn 1's
    lines, as the CLI wrote them, into the new branch's transcript, and nothing of turn 2."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        first = await run_turn(runner, store, session, REMEMBER)
        second = await run_turn(runner, store, session, "Remember the number 7.")
        rewound = await until_ended(
            runner,
            store,
            await runner.start(session, RECALL, rewind=Rewind(to_seq=first[-1].seq)),
        )
    [marker] = only(rewound, ConversationRewound)
    old = await transcript(store, agent_session_id(session))
    new = await transcript(store, marker.agent_session)

    assert only(rewound, RunFinished)[0].result == RECALLED
    assert prompts_seen(scripted_model) == [REMEMBER, RECALL]
    first_run, second_run = only(first, RunStarted)[0], only(second, RunStarted)[0]
    prompt_ids = [
        e["uuid"]
        for e in old
        if e["type"] == "user"
        and e.get("uuid")
        in {prompt_uuid(first_run.run_id or ""), prompt_uuid(second_run.run_id or "")}
    ]
    assert prompt_ids == [prompt_uuid(first_run.run_id or ""), prompt_uuid(second_run.run_id or "")]
    # The kept part: the old transcript's lines up to turn 2's prompt, as the CLI wrote them
    # (its own attachment lines included, which a conversion from events never writes).
    cut = next(i for i, e in enumerate(old) if e.get("uuid") == prompt_ids[1])
    kept = [{**e, "sessionId": marker.agent_session} for e in old[:cut] if "uuid" in e]
    assert new[: len(kept)] == kept
    assert any(e["type"] == "attachment" for e in kept)
    assert not any("number 7" in json.dumps(e.get("message", "")) for e in new)
    typed = [
        e["uuid"] for e in new if e["type"] == "user" and isinstance(e["message"]["content"], str)
    ]
    again = only(rewound, RunStarted)[0]
    assert typed == [prompt_uuid(first_run.run_id or ""), prompt_uuid(again.run_id or "")]
