"""The event store contract, run against every backend (tests.conftest.BACKENDS). Each test
names a guarantee of agentlog.domain.ports.event_store.EventStore."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest

from agentlog.domain.errors import (
    EventTooLarge,
    ExpectedSeqMismatch,
    IdempotencyKeyReused,
    InvalidAppend,
    RunFenced,
    SessionAlreadyExists,
    UnknownSession,
)
from agentlog.domain.events import (
    CustomEventRecorded,
    PromptQueued,
    RunAbandoned,
    RunFinished,
    RunStarted,
    SessionCreated,
    TextCompleted,
    ToolApprovalResponded,
    utc_now,
)
from agentlog.domain.ports.event_store import RunFence, RunRecord, TurnDue
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.store.base import StoreBase
from tests.conftest import ROOT, StoreOpener


def custom(i: object, name: str = "n") -> CustomEventRecorded:
    return CustomEventRecorded(name=name, data=i)


async def test_creates_a_session_and_assigns_dense_seqs_from_one(store: StoreBase) -> None:
    assert await store.append("s", [SessionCreated(title="hello")]) == [1]
    assert await store.append("s", [custom(1), custom(2)]) == [2, 3]
    assert await store.append("s", [custom(3)]) == [4]
    events = await store.read("s")
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.type for e in events] == ["session_created", "custom", "custom", "custom"]
    assert events[0].event == SessionCreated(title="hello")
    assert [e.event.data for e in events[1:]] == [1, 2, 3]  # type: ignore[union-attr]
    assert await store.head("s") == 4


async def test_reads_after_an_offset_with_a_limit(store: StoreBase) -> None:
    await store.append("s", [SessionCreated(), *[custom(i) for i in range(9)]])
    page = await store.read("s", after=3, limit=4)
    assert [e.seq for e in page] == [4, 5, 6, 7]
    assert await store.read("s", after=10) == []


async def test_keeps_run_ids_and_payloads_intact(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    await store.append(
        "s",
        [
            RunStarted(run_id="r1", prompt="héllo ✓"),
            TextCompleted(run_id="r1", message_id="m", text="x" * 10_000),
        ],
    )
    events = await store.read("s", after=1)
    assert events[0].run_id == "r1"
    assert events[0].event == RunStarted(run_id="r1", prompt="héllo ✓")
    assert events[1].event.text == "x" * 10_000  # type: ignore[union-attr]
    assert events[0].time <= events[1].time


async def test_positions_are_global_and_in_commit_order(store: StoreBase) -> None:
    await store.append("a", [SessionCreated()])
    await store.append("b", [SessionCreated()])
    await store.append("a", [custom(1)])
    await store.append("b", [custom(2), custom(3)])
    feed = await store.read_all()
    assert [(e.session_id, e.seq) for e in feed] == [
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("b", 2),
        ("b", 3),
    ]
    assert [e.position for e in feed] == [1, 2, 3, 4, 5]
    assert [e.position for e in await store.read_all(after=3, limit=1)] == [4]
    assert await store.last_position() == 5


async def test_refuses_an_append_to_an_unknown_session_and_writes_nothing(
    store: StoreBase,
) -> None:
    with pytest.raises(UnknownSession):
        await store.append("missing", [custom(1)])
    assert await store.last_position() == 0
    assert await store.session("missing") is None
    with pytest.raises(UnknownSession):
        await store.head("missing")


async def test_refuses_to_create_a_session_twice(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    with pytest.raises(SessionAlreadyExists):
        await store.append("s", [SessionCreated()])
    assert await store.head("s") == 1


@pytest.mark.parametrize(
    "bad",
    [
        [],
        [{"type": "custom", "name": "x"}],
        ["not an event"],
        [custom(1), SessionCreated()],
    ],
    ids=["empty", "dict", "string", "created-not-first"],
)
async def test_refuses_invalid_batches_and_writes_nothing(store: StoreBase, bad: list) -> None:
    await store.append("s", [SessionCreated()])
    with pytest.raises(InvalidAppend):
        await store.append("s", bad)
    assert await store.head("s") == 1
    assert await store.last_position() == 1


async def test_refuses_an_event_over_the_size_limit_and_writes_nothing(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    with pytest.raises(EventTooLarge) as caught:
        await store.append("s", [custom(1), custom("x" * (store.max_event_bytes + 1))])
    assert caught.value.limit == store.max_event_bytes
    assert await store.head("s") == 1


async def test_refuses_invalid_session_ids(store: StoreBase) -> None:
    for bad in ["", "a\x00b", "x" * 201]:
        with pytest.raises(InvalidAppend):
            await store.append(bad, [SessionCreated()])
    assert await store.last_position() == 0


async def test_expected_seq_conflict_carries_the_head_and_writes_nothing(
    store: StoreBase,
) -> None:
    await store.append("s", [SessionCreated(), custom(1)])
    with pytest.raises(ExpectedSeqMismatch) as caught:
        await store.append("s", [custom(2)], expected_seq=1)
    assert caught.value.head == 2
    assert await store.head("s") == 2
    assert await store.append("s", [custom(2)], expected_seq=2) == [3]


async def test_exactly_one_of_two_writers_with_the_same_expected_seq_wins(
    store: StoreBase,
) -> None:
    await store.append("s", [SessionCreated()])
    results = await asyncio.gather(
        *(store.append("s", [custom(i)], expected_seq=1) for i in range(10)),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, list)]
    assert wins == [[2]]
    assert all(isinstance(r, ExpectedSeqMismatch) for r in results if not isinstance(r, list))
    assert await store.head("s") == 2


async def test_a_refused_append_does_not_fail_the_others_in_its_group(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    results = await asyncio.gather(
        store.append("s", [custom("a")]),
        store.append("nope", [custom("b")]),
        store.append("s", [custom("c")], expected_seq=99),
        store.append("s", [custom("d")]),
        return_exceptions=True,
    )
    assert isinstance(results[1], UnknownSession)
    assert isinstance(results[2], ExpectedSeqMismatch)
    assert sorted([*results[0], *results[3]]) == [2, 3]  # type: ignore[misc]
    assert [e.event.data for e in await store.read("s", after=1)] == ["a", "d"]  # type: ignore[union-attr]


async def test_group_commit_coalesces_concurrent_appends(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    before = store.commit_stats.transactions
    results = await asyncio.gather(*(store.append("s", [custom(i)]) for i in range(300)))
    transactions = store.commit_stats.transactions - before
    assert transactions < 300 / 5, transactions
    assert sorted(seq for r in results for seq in r) == list(range(2, 302))
    # Each caller got the seq its own event landed at.
    by_seq = {e.seq: e.event.data for e in await store.read("s", after=1, limit=1000)}  # type: ignore[union-attr]
    assert [by_seq[r[0]] for r in results] == list(range(300))


async def test_one_transaction_keeps_every_payload_byte_exact(store: StoreBase) -> None:
    # Many appends of different sizes, multi-byte text and several events each, coalesced
    # into one transaction: each event must come back whole, in its own place.
    sessions = [f"sess-{i} ✓" for i in range(8)]
    await asyncio.gather(*(store.append(s, [SessionCreated()]) for s in sessions))

    def batch(i: int) -> list[CustomEventRecorded | TextCompleted]:
        return [
            custom({"i": i, "pad": "é" * (i * 37 % 900), "empty": ""}),
            TextCompleted(run_id=f"run-{i}" if i % 2 else None, message_id=str(i), text="ü" * i),
        ]

    results = await asyncio.gather(*(store.append(sessions[i % 8], batch(i)) for i in range(120)))
    for s in sessions:
        events = await store.read(s, after=1, limit=1000)
        assert [e.seq for e in events] == list(range(2, 2 + len(events)))
    feed = await store.read_all(limit=10_000)
    assert [e.position for e in feed] == list(range(1, len(feed) + 1))
    by_key = {(e.session_id, e.seq): e.event for e in feed}
    for i, seqs in enumerate(results):
        assert [by_key[(sessions[i % 8], seq)] for seq in seqs] == batch(i)


async def test_readers_never_see_part_of_a_batch(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    done = asyncio.Event()
    observed: list[int] = []

    async def writer() -> None:
        for i in range(40):
            await store.append("s", [custom(i * 10 + j) for j in range(10)])
        done.set()

    async def reader() -> None:
        while not done.is_set():
            observed.append(len(await store.read("s", limit=10_000)))
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    assert observed and all((n - 1) % 10 == 0 for n in observed), observed


async def test_acknowledged_appends_survive_a_restart(open_test_store: StoreOpener) -> None:
    async with open_test_store() as first:
        await first.append("s", [SessionCreated(), custom(1)])
        await first.append("t", [SessionCreated()])
    async with open_test_store() as second:
        assert [e.seq for e in await second.read("s")] == [1, 2]
        assert await second.append("s", [custom(2)]) == [3]
        assert await second.last_position() == 4
        assert [s.session_id for s in await second.sessions()] == ["s", "t"]


async def test_lists_sessions_with_their_heads(store: StoreBase) -> None:
    for name in ["b", "a", "c"]:
        await store.append(name, [SessionCreated()])
    await store.append("a", [custom(1)])
    listed = await store.sessions()
    assert [(s.session_id, s.head) for s in listed] == [("a", 2), ("b", 1), ("c", 1)]
    assert [s.session_id for s in await store.sessions(after="a", limit=1)] == ["b"]
    a = await store.session("a")
    assert a is not None and a.updated_at >= a.created_at


# -- several processes --------------------------------------------------------------------


def _spawn_writers(
    url: str, writers: int, count: int, sessions: list[str]
) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.contract.append_worker",
                url,
                str(w),
                str(count),
                *sessions,
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for w in range(writers)
    ]


async def _wait_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        rc = await asyncio.to_thread(proc.wait, 120)
        assert rc == 0, proc.stderr.read().decode() if proc.stderr else rc


@pytest.mark.slow
async def test_concurrent_processes_append_every_event_once_with_dense_seqs_while_a_reader_tails(
    store: StoreBase, database_url: str
) -> None:
    """The AutoGPT bug: several writers on one session. 4 processes x 4 concurrent lanes;
    a reader tails `seq > last` throughout and must never see a gap or a repeat."""
    writers, count = 4, 150
    await store.append("s", [SessionCreated()])
    procs = _spawn_writers(database_url, writers, count, ["s"])
    seen: list[object] = []
    last = 1
    total = 1 + writers * count

    async def tail() -> None:
        nonlocal last
        while last < total:
            page = await store.read("s", after=last, limit=500)
            for event in page:
                assert event.seq == last + 1, f"tailing reader skipped from {last} to {event.seq}"
                last = event.seq
                seen.append(tuple(event.event.data))  # type: ignore[union-attr]
            if not page:
                await asyncio.sleep(0.002)

    await asyncio.wait_for(asyncio.gather(_wait_all(procs), tail()), timeout=180)
    assert len(seen) == writers * count
    assert Counter(seen) == Counter((w, i) for w in range(writers) for i in range(count))
    assert [e.seq for e in await store.read("s", limit=10_000)] == list(range(1, total + 1))


@pytest.mark.slow
async def test_a_global_tail_never_skips_an_event_that_commits_later(
    store: StoreBase, database_url: str
) -> None:
    sessions = [f"s{i}" for i in range(6)]
    for session in sessions:
        await store.append(session, [SessionCreated()])
    writers, count = 4, 120
    procs = _spawn_writers(database_url, writers, count, sessions)
    position = len(sessions)
    total = len(sessions) + writers * count
    heads = dict.fromkeys(sessions, 1)

    async def tail() -> None:
        nonlocal position
        while position < total:
            page = await store.read_all(after=position, limit=500)
            for event in page:
                assert event.position == position + 1, "global tail skipped a position"
                assert event.seq == heads[event.session_id] + 1, "session order broken in feed"
                heads[event.session_id] = event.seq
                position = event.position
            if not page:
                await asyncio.sleep(0.002)

    await asyncio.wait_for(asyncio.gather(_wait_all(procs), tail()), timeout=180)
    assert sum(heads.values()) == total


def _spawn_ack_writer(url: str, session: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.contract.ack_worker", url, session],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
async def test_every_acknowledged_append_survives_kill_9_of_the_writer(
    store: StoreBase, database_url: str
) -> None:
    await store.append("s", [SessionCreated()])
    proc = _spawn_ack_writer(database_url, "s")
    acked: dict[int, str] = {}
    assert proc.stdout is not None

    def read_acks() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            seq, token = line.decode().split()
            acked[int(seq)] = token
            if len(acked) >= 400:
                proc.kill()  # SIGKILL: no cleanup, appends in flight are cut off
                break

    await asyncio.wait_for(asyncio.to_thread(read_acks), timeout=120)
    await asyncio.to_thread(proc.wait, 30)
    assert len(acked) >= 400, proc.stderr.read().decode() if proc.stderr else ""

    logged = {e.seq: e.event.data for e in await store.read("s", after=1, limit=100_000)}  # type: ignore[union-attr]
    assert set(acked) <= set(logged), "an acknowledged append is missing after kill -9"
    assert all(logged[seq] == token for seq, token in acked.items())
    assert sorted(logged) == list(range(2, 2 + len(logged))), "seqs are not dense after the kill"
    assert len(set(logged.values())) == len(logged), "an event was written twice"


async def test_an_idempotency_key_makes_a_retry_return_the_first_result_and_write_nothing(
    store: StoreBase,
) -> None:
    await store.append("s", [SessionCreated()])
    first = await store.append("s", [custom(1), custom(2)], idempotency_key="k1")
    assert first == [2, 3]
    again = await store.append("s", [custom(1), custom(2)], idempotency_key="k1")
    assert again == first
    assert await store.head("s") == 3
    # Concurrent retries with one key land once; another session's key space is separate.
    await store.append("t", [SessionCreated()])
    results = await asyncio.gather(
        *(store.append("s", [custom("x")], idempotency_key="k2") for _ in range(5)),
        store.append("t", [custom("y")], idempotency_key="k2"),
    )
    assert all(r == results[0] for r in results[:5]) and results[0] == [4]
    assert results[5] == [2]
    assert await store.head("s") == 4


async def test_an_idempotency_key_survives_a_restart(open_test_store: StoreOpener) -> None:
    async with open_test_store() as first:
        await first.append("s", [SessionCreated()])
        assert await first.append("s", [custom(1)], idempotency_key="k") == [2]
    async with open_test_store() as second:
        assert await second.append("s", [custom(1)], idempotency_key="k") == [2]
        assert await second.head("s") == 2


async def test_a_refused_append_does_not_consume_its_idempotency_key(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    with pytest.raises(ExpectedSeqMismatch):
        await store.append("s", [custom(1)], expected_seq=5, idempotency_key="k")
    assert await store.append("s", [custom(1)], expected_seq=1, idempotency_key="k") == [2]


async def test_read_session_returns_every_event_after_an_offset_across_pages(
    store: StoreBase,
) -> None:
    await store.append("s", [SessionCreated()])
    for start in range(0, 12_000, 4000):
        await store.append("s", [custom(i) for i in range(start, start + 4000)])
    everything = await store.read_session("s")
    assert [e.seq for e in everything] == list(range(1, 12_002))
    tail = await store.read_session("s", after=11_990)
    assert [e.seq for e in tail] == list(range(11_991, 12_002))
    assert await store.read_session("s", after=12_001) == []


async def test_the_run_index_follows_run_starts_and_ends_in_the_append(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    assert await store.current_run("s") is None
    await store.append("s", [RunStarted(run_id="r1", prompt="p"), custom(1)])
    assert await store.current_run("s") == RunRecord(session_id="s", run_id="r1", started_seq=2)
    assert [r.run_id for r in await store.open_runs()] == ["r1"]
    await store.append("s", [RunFinished(run_id="r1"), RunStarted(run_id="r2", prompt="q")])
    assert await store.run("s", "r1") == RunRecord(
        session_id="s", run_id="r1", started_seq=2, ended_seq=4
    )
    assert (await store.current_run("s")).run_id == "r2"  # type: ignore[union-attr]
    assert [r.run_id for r in await store.open_runs()] == ["r2"]
    assert await store.run("s", "nope") is None


async def test_a_fenced_append_lands_only_while_its_run_is_current_and_open(
    store: StoreBase,
) -> None:
    await store.append("s", [SessionCreated(), RunStarted(run_id="r1", prompt="p")])
    fence = RunFence(run_id="r1", token=2)
    assert await store.append("s", [custom(1)], fence=fence) == [3]
    with pytest.raises(RunFenced):
        await store.append("s", [custom(1)], fence=RunFence(run_id="r1", token=1))
    # Another writer (recovery) ends the run: the run's own writer is refused from then on,
    # while appends that carry no fence, in the same transaction, still land.
    await store.append("s", [RunAbandoned(run_id="r1", reason="lease lost")])
    fenced, free = await asyncio.gather(
        store.append("s", [TextCompleted(run_id="r1", message_id="m", text="late")], fence=fence),
        store.append("s", [custom(2)]),
        return_exceptions=True,
    )
    assert isinstance(fenced, RunFenced) and free == [5]
    # A newer run supersedes an older one that never ended.
    await store.append("s", [RunStarted(run_id="r2", prompt="q")])
    await store.append("s", [RunStarted(run_id="r3", prompt="q")])
    with pytest.raises(RunFenced):
        await store.append("s", [custom(3)], fence=RunFence(run_id="r2", token=6))
    assert await store.append(
        "s", [custom(3), RunFinished(run_id="r3")], fence=RunFence(run_id="r3", token=7)
    ) == [8, 9]
    with pytest.raises(RunFenced):
        await store.append("s", [custom(4)], fence=RunFence(run_id="r3", token=7))
    assert [e.type for e in await store.read("s", after=7)] == ["custom", "run_finished"]


async def test_a_key_bound_to_a_request_hash_refuses_another_request(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    first = await store.append("s", [custom(1)], idempotency_key="k", request_hash="h1")
    assert await store.append("s", [custom(1)], idempotency_key="k", request_hash="h1") == first
    with pytest.raises(IdempotencyKeyReused):
        await store.append("s", [custom(2)], idempotency_key="k", request_hash="h2")
    keyed = await store.keyed_append("s", "k")
    assert keyed is not None and (keyed.seqs, keyed.request_hash) == (first, "h1")
    assert await store.keyed_append("s", "other") is None
    assert await store.head("s") == 2


async def test_pruning_forgets_keys_older_than_the_cutoff(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    await store.append("s", [custom(1)], idempotency_key="old")
    assert await store.prune_idempotency(utc_now() - timedelta(hours=1)) == 0
    assert await store.prune_idempotency(utc_now() + timedelta(seconds=1)) == 1
    assert await store.keyed_append("s", "old") is None
    assert await store.append("s", [custom(1)], idempotency_key="old") == [3]


async def test_open_runs_page_through_every_open_run(store: StoreBase) -> None:
    # The abandoned-run sweep reads them page by page: none is left past the first page.
    for n in range(5):
        await store.append(f"s{n}", [SessionCreated(), RunStarted(run_id=f"r{n}", prompt="p")])
    await store.append("s2", [RunFinished(run_id="r2")])
    seen: list[str] = []
    after: RunRecord | None = None
    while page := await store.open_runs(limit=2, after=after):
        assert len(page) <= 2
        seen += [r.run_id for r in page]
        after = page[-1]
    assert seen == ["r0", "r1", "r3", "r4"]


def answer(approval_id: str = "a1") -> ToolApprovalResponded:
    return ToolApprovalResponded(approval_id=approval_id, tool_call_id="t1", approved=True)


async def test_an_answer_or_a_queued_prompt_marks_its_session_due_in_the_same_append(
    store: StoreBase,
) -> None:
    # Issue 19: an answer written alone, whose writer died before looking for its
    # continuation, was found by nobody. The append that writes it now leaves a mark the
    # sweep finds; an answer written with the run that acts on it leaves none.
    later = utc_now() + timedelta(seconds=5)
    for s in ("alone", "with-run", "queued", "plain"):
        await store.append(s, [SessionCreated(), RunStarted(run_id="r1", prompt="p")])
    await store.append("alone", [RunFinished(run_id="r1")])
    await store.append("alone", [answer()])  # seq 4
    await store.append("with-run", [RunFinished(run_id="r1")])
    await store.append("with-run", [answer(), RunStarted(run_id="r2", prompt="")])
    fence = RunFence(run_id="r1", token=2)
    await store.append("queued", [PromptQueued(prompt="next")], fence=fence)
    await store.append("plain", [custom(1), RunFinished(run_id="r1")])
    assert await store.turns_due(later) == [
        TurnDue(session_id="alone", due_seq=4),
        TurnDue(session_id="queued", due_seq=3),
    ]
    # Only marks made before the moment asked about.
    assert await store.turns_due(utc_now() - timedelta(seconds=5)) == []
    # Paged by session id.
    assert [d.session_id for d in await store.turns_due(later, limit=1)] == ["alone"]
    assert [d.session_id for d in await store.turns_due(later, after="alone")] == ["queued"]

    # A look settles the mark it saw, never a newer one.
    await store.append("alone", [answer("a2")])  # seq 5
    await store.settle_turn_due("alone", 4)
    assert await store.turns_due(later) == [
        TurnDue(session_id="alone", due_seq=5),
        TurnDue(session_id="queued", due_seq=3),
    ]
    await store.settle_turn_due("alone", 5)
    await store.settle_turn_due("queued", 3)
    assert await store.turns_due(later) == []
    # A refused append marks nothing.
    with pytest.raises(RunFenced):
        await store.append("plain", [PromptQueued(prompt="late")], fence=fence)
    assert await store.turns_due(later) == []
    # A deleted session's mark goes with it.
    await store.append("alone", [answer("a3")])
    await SessionDeleter(store).delete("alone")
    assert await store.turns_due(utc_now() + timedelta(seconds=5)) == []


async def test_reads_flat_what_encoding_the_read_events_gives(store: StoreBase) -> None:
    from agentlog.domain.events import encode_recorded
    from agentlog.infra.sessions.importing import export_lines, import_session, parse_export

    await store.append("s", [SessionCreated(title="t")])
    await store.append("s", [custom(i) for i in range(5)])
    await store.append("s", [TextCompleted(run_id="r", message_id="m", block_index=0, text="é\n")])
    # Stored JSON that is not what this version encodes: a field a newer version wrote, a
    # default an older one left out, keys in another order. The flat JSON is the event as this
    # version knows it, as `read` gives it, not the stored bytes.
    lines = [line async for line in export_lines(store, "s")]
    lines[0] = lines[0].replace(b'"title":"t",', b'"newer":[1],')
    lines[1] = lines[1].replace(b'"type":"custom","run_id":null', b'"run_id":null,"type":"custom"')
    await import_session(store, parse_export(lines, rename_to="imported"))
    for session_id in ("s", "imported"):
        for after, limit in ((0, 1000), (0, 3), (2, 2), (7, 10)):
            flat = await store.read_flat(session_id, after=after, limit=limit)
            read = await store.read(session_id, after=after, limit=limit)
            assert flat == [(e.seq, e.type, encode_recorded(e)) for e in read]
    [first] = await store.read_flat("imported", limit=1)
    assert b"newer" not in first[2] and b'"title":null' in first[2]


async def test_reads_flat_an_event_whose_stored_json_is_not_what_it_encodes_to(
    store: StoreBase,
) -> None:
    from agentlog.domain.events import ModelCallMetered, encode_recorded

    # Built in Python with an int where the field says float: stored as `1`, read back as
    # 1.0. A read sends the event as read, so the stored bytes must not be sent as they are.
    await store.append("s", [SessionCreated()])
    await store.append("s", [ModelCallMetered(endpoint="messages", status=200, cost_usd=1)])
    read = await store.read("s")
    assert await store.read_flat("s") == [(e.seq, e.type, encode_recorded(e)) for e in read]
    assert b'"cost_usd":1.0' in (await store.read_flat("s", after=1))[0][2]


async def test_reads_framed_each_event_as_the_frame_of_what_the_read_event_encodes_to(
    store: StoreBase,
) -> None:
    from agentlog.domain.events import ModelCallMetered, encode_recorded
    from agentlog.infra.sessions.importing import export_lines, import_session, parse_export

    # A session id its JSON must escape, text with a newline and non-ASCII, an event whose
    # stored JSON is not what it encodes to, and an import in another key order: rows sent
    # as stored and rows encoded again, side by side in one page.
    odd = 'sé "q" \\ \n1'
    await store.append(odd, [SessionCreated(title="t")])
    await store.append(odd, [custom(i) for i in range(5)])
    await store.append(odd, [TextCompleted(run_id="r", message_id="m", block_index=0, text="é\n")])
    await store.append(odd, [ModelCallMetered(endpoint="messages", status=200, cost_usd=1)])
    await store.append(odd, [custom("last")])
    lines = [line async for line in export_lines(store, odd)]
    lines[1] = lines[1].replace(b'"type":"custom","run_id":null', b'"run_id":null,"type":"custom"')
    await import_session(store, parse_export(lines, rename_to="imported"))
    for frame in (b"id: %d\nevent: %b\ndata: %b\n\n", b"%d|%b|%b;"):
        for session_id in (odd, "imported"):
            for after, limit in ((0, 1000), (0, 3), (2, 2), (6, 10), (9, 5)):
                read = await store.read(session_id, after=after, limit=limit)
                page = await store.read_framed(session_id, after=after, limit=limit, frame=frame)
                assert page.events == len(read)
                assert page.last_seq == (read[-1].seq if read else after)
                assert page.frames == b"".join(
                    frame % (e.seq, e.type.encode(), encode_recorded(e)) for e in read
                )
    assert await store.read_framed("nobody", after=4, frame=b"%d %b %b") == (0, 4, b"")
