"""The transcript tables' contract (agentlog.infra.store.transcripts.TranscriptTables), on every
backend: entries kept in append order and stored once per uuid, transcripts bound to the
agentlog session that first claims them, the main transcripts listed with their storage time
and folded summary, subpaths listed and deleted alone, and a session's transcripts read and
removed whole. Each test names one promise of the port's docstrings."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from agentlog.infra.store.backend import Backend
from agentlog.infra.store.transcripts import (
    StoredTranscript,
    TranscriptKey,
    TranscriptListing,
    TranscriptTables,
)

MAIN = TranscriptKey("project", "agent-1")
SUB = TranscriptKey("project", "agent-1", "subagents/agent-a")


@pytest.fixture
def tables(backend: Backend) -> TranscriptTables:
    return backend.transcript_tables()


def entry(n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "user", "uuid": f"u-{n}", "n": n, **extra}


def counting(previous: dict[str, Any] | None, added: list[dict[str, Any]]) -> dict[str, Any]:
    """A summary fold that shows what it was given: how many entries in all, and the last."""
    return {"count": (previous or {}).get("count", 0) + len(added), "last": added[-1]["n"]}


async def test_entries_are_read_back_whole_in_append_order(tables: TranscriptTables) -> None:
    odd = entry(3, text="héllo ✓ \u0000 \ud800", nested={"a": [1, 2.5, None, True]}, big=2**70)
    await tables.append(MAIN, None, [entry(1), entry(2)], None, 1)
    await tables.append(MAIN, None, [odd, entry(4)], None, 2)
    assert await tables.load(MAIN) == [entry(1), entry(2), odd, entry(4)]


async def test_a_transcript_never_written_loads_as_none(tables: TranscriptTables) -> None:
    await tables.append(MAIN, None, [entry(1)], None, 1)
    assert await tables.load(TranscriptKey("project", "agent-2")) is None
    assert await tables.load(TranscriptKey("other-project", "agent-1")) is None
    assert await tables.load(SUB) is None  # the main transcript has no subpath's entries


async def test_an_entry_whose_uuid_the_transcript_holds_is_not_stored_again(
    tables: TranscriptTables,
) -> None:
    await tables.append(MAIN, None, [entry(1), entry(2)], None, 1)
    # A retried batch, overlapping the first, and a uuid twice within one batch.
    await tables.append(MAIN, None, [entry(2), entry(3), entry(3, late=True), entry(1)], None, 2)
    assert await tables.load(MAIN) == [entry(1), entry(2), entry(3)]


async def test_entries_without_a_uuid_are_stored_every_time(tables: TranscriptTables) -> None:
    title = {"type": "custom-title", "customTitle": "t"}
    await tables.append(MAIN, None, [title, entry(1)], None, 1)
    await tables.append(MAIN, None, [title, entry(1)], None, 2)
    assert await tables.load(MAIN) == [title, entry(1), title]


async def test_uuids_are_told_apart_by_subpath(tables: TranscriptTables) -> None:
    await tables.append(MAIN, None, [entry(1)], None, 1)
    await tables.append(SUB, None, [entry(1), entry(2)], None, 2)
    assert await tables.load(MAIN) == [entry(1)]
    assert await tables.load(SUB) == [entry(1), entry(2)]


async def test_a_transcript_belongs_to_the_first_session_that_claims_it(
    tables: TranscriptTables,
) -> None:
    assert await tables.owner("project", "agent-1") is None  # does not exist
    await tables.append(MAIN, None, [entry(1)], None, 1)
    assert await tables.owner("project", "agent-1") is None  # belongs to none
    await tables.append(SUB, "chat-a", [entry(2)], None, 2)
    assert await tables.owner("project", "agent-1") == "chat-a"
    await tables.append(MAIN, "chat-b", [entry(3)], None, 3)
    assert await tables.owner("project", "agent-1") == "chat-a"  # never taken over
    assert await tables.owner("other-project", "agent-1") is None


async def test_only_transcripts_with_a_main_transcript_are_listed_with_mtime_and_summary(
    tables: TranscriptTables,
) -> None:
    await tables.append(MAIN, None, [entry(1)], counting, 1_000)
    await tables.append(MAIN, None, [entry(2), entry(3)], counting, 2_000)
    await tables.append(TranscriptKey("project", "agent-2"), None, [entry(4)], None, 1_500)
    # Only a subagent's lines: no main transcript to list.
    await tables.append(
        TranscriptKey("project", "agent-3", "subagents/x"), None, [entry(5)], None, 9
    )
    await tables.append(TranscriptKey("elsewhere", "agent-4"), None, [entry(6)], counting, 9)
    listed = sorted(await tables.list_main("project"), key=lambda t: t.agent_session_id)
    assert listed == [
        TranscriptListing("agent-1", 2_000, {"count": 3, "last": 3}),
        TranscriptListing("agent-2", 1_500, None),  # no fold: no summary
    ]
    assert await tables.list_main("nobody") == []


async def test_the_summary_folds_only_entries_that_were_added(tables: TranscriptTables) -> None:
    await tables.append(MAIN, None, [entry(1), entry(2)], counting, 1)
    await tables.append(MAIN, None, [entry(1), entry(2)], counting, 2)  # a retry: nothing new
    await tables.append(MAIN, None, [entry(2), entry(3)], counting, 3)
    # A subpath's entries are not the main transcript's: its summary stays.
    await tables.append(SUB, None, [entry(9)], counting, 4)
    [listed] = await tables.list_main("project")
    assert (listed.mtime, listed.summary) == (3, {"count": 3, "last": 3})


async def test_concurrent_appends_to_one_transcript_lose_nothing(
    tables: TranscriptTables,
) -> None:
    batches = [[entry(b * 10 + i) for i in range(5)] for b in range(12)]
    # Every batch twice, all at once: numbering and the summary's read-fold-write take turns.
    await asyncio.gather(
        *(tables.append(MAIN, "chat", batch, counting, 1) for batch in batches + batches)
    )
    loaded = await tables.load(MAIN)
    assert loaded is not None
    assert sorted(e["n"] for e in loaded) == sorted(e["n"] for b in batches for e in b)
    for batch in batches:  # each batch kept its own order
        positions = [loaded.index(e) for e in batch]
        assert positions == sorted(positions)
    [listed] = await tables.list_main("project")
    assert listed.summary is not None and listed.summary["count"] == 60


async def test_subkeys_are_the_subpaths_with_entries_in_order(tables: TranscriptTables) -> None:
    await tables.append(MAIN, None, [entry(1)], None, 1)
    for subpath in ("subagents/b", "subagents/a", "subagents/b"):
        await tables.append(TranscriptKey("project", "agent-1", subpath), None, [entry(2)], None, 2)
    await tables.append(
        TranscriptKey("project", "agent-2", "subagents/c"), None, [entry(3)], None, 3
    )
    assert await tables.list_subkeys("project", "agent-1") == ["subagents/a", "subagents/b"]
    assert await tables.list_subkeys("project", "agent-3") == []


async def test_deleting_a_subpath_removes_only_it(tables: TranscriptTables) -> None:
    other = TranscriptKey("project", "agent-1", "subagents/other")
    await tables.append(MAIN, "chat", [entry(1)], counting, 1)
    await tables.append(SUB, None, [entry(2)], None, 2)
    await tables.append(other, None, [entry(3)], None, 3)
    await tables.delete(SUB)
    assert await tables.load(SUB) is None
    assert await tables.load(other) == [entry(3)]
    assert await tables.load(MAIN) == [entry(1)]
    assert await tables.list_subkeys("project", "agent-1") == ["subagents/other"]
    assert await tables.owner("project", "agent-1") == "chat"
    assert [t.agent_session_id for t in await tables.list_main("project")] == ["agent-1"]


async def test_deleting_the_main_key_removes_the_transcript_with_every_subpath(
    tables: TranscriptTables,
) -> None:
    kept = TranscriptKey("project", "agent-2")
    await tables.append(MAIN, "chat", [entry(1)], counting, 1)
    await tables.append(SUB, None, [entry(2)], None, 2)
    await tables.append(kept, "chat", [entry(3)], None, 3)
    await tables.delete(MAIN)
    assert await tables.load(MAIN) is None and await tables.load(SUB) is None
    assert await tables.list_subkeys("project", "agent-1") == []
    assert await tables.owner("project", "agent-1") is None
    assert [t.agent_session_id for t in await tables.list_main("project")] == ["agent-2"]
    assert await tables.load(kept) == [entry(3)]
    # Written again, it starts anew: no uuid of the deleted one is remembered.
    await tables.append(MAIN, None, [entry(1)], counting, 4)
    assert await tables.load(MAIN) == [entry(1)]
    assert [t.summary for t in await tables.list_main("project") if t.mtime == 4] == [
        {"count": 1, "last": 1}
    ]


async def test_a_sessions_transcripts_are_read_whole_by_key_then_append_order(
    tables: TranscriptTables,
) -> None:
    b_main = TranscriptKey("p-b", "agent-9")
    await tables.append(b_main, "chat", [entry(1)], None, 1)
    await tables.append(SUB, None, [entry(2), entry(3)], None, 2)
    await tables.append(MAIN, "chat", [entry(4)], None, 3)  # binds agent-1, subpaths too
    await tables.append(b_main, None, [entry(5)], None, 4)
    await tables.append(TranscriptKey("project", "agent-2"), "other", [entry(6)], None, 5)
    await tables.append(TranscriptKey("project", "agent-3"), None, [entry(7)], None, 6)
    assert await tables.of_session("chat") == [
        StoredTranscript(b_main, [entry(1), entry(5)]),
        StoredTranscript(MAIN, [entry(4)]),
        StoredTranscript(SUB, [entry(2), entry(3)]),
    ]
    assert await tables.of_session("nobody") == []


async def test_deleting_a_session_removes_its_transcripts_and_counts_their_entries(
    tables: TranscriptTables,
) -> None:
    others = TranscriptKey("project", "agent-2")
    await tables.append(MAIN, "chat", [entry(1), entry(2)], counting, 1)
    await tables.append(SUB, None, [entry(3)], None, 2)
    await tables.append(TranscriptKey("p-b", "agent-9"), "chat", [entry(4)], None, 3)
    await tables.append(others, "other", [entry(5)], counting, 4)
    assert await tables.delete_session("chat") == 4
    assert await tables.of_session("chat") == []
    assert await tables.load(MAIN) is None and await tables.load(SUB) is None
    assert await tables.owner("project", "agent-1") is None
    assert [t.agent_session_id for t in await tables.list_main("project")] == ["agent-2"]
    assert await tables.of_session("other") == [StoredTranscript(others, [entry(5)])]
    assert await tables.delete_session("chat") == 0


async def test_a_long_transcript_is_decoded_off_the_event_loop(
    tables: TranscriptTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume in a long conversation loads thousands of lines at each run's start: decoded
    on the loop, every other request of the server waited for it (issue 21)."""
    from agentlog.infra.store import transcripts

    lines = [entry(n) for n in range(transcripts.DECODE_ON_LOOP + 1)]
    await tables.append(MAIN, None, lines, None, 1)
    decoded_in: set[int] = set()
    decode = transcripts.decode_entry

    def noting_thread(text: str) -> dict[str, Any]:
        decoded_in.add(threading.get_ident())
        return decode(text)

    monkeypatch.setattr(transcripts, "decode_entry", noting_thread)
    assert await tables.load(MAIN) == lines
    assert decoded_in and threading.get_ident() not in decoded_in
    # A short one is decoded in place (a thread's hand-over would cost more than the work).
    decoded_in.clear()
    await tables.append(SUB, None, lines[:3], None, 2)
    assert await tables.load(SUB) == lines[:3]
    assert decoded_in == {threading.get_ident()}
