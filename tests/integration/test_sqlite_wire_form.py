"""SQLite sends a row's stored bytes as they are only when its mark says this version's
encoding gives them back (agentlog.infra.store.wire_form); every other row is decoded and
encoded again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentlog.domain.events import (
    CustomEventRecorded,
    ModelCallMetered,
    SessionCreated,
    encode_recorded,
)
from agentlog.infra.store.opening import open_store


def _marks(path: Path) -> dict[int, int | None]:
    with sqlite3.connect(path) as conn:
        return dict(
            conn.execute("SELECT originator_version, encoding FROM agentlog_events").fetchall()
        )


async def test_appended_rows_are_marked_unless_their_round_trip_changes_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.append("s", [SessionCreated(), CustomEventRecorded(name="x", data=[1.5])])
        await store.append("s", [ModelCallMetered(endpoint="messages", status=200, cost_usd=1)])
    marks = _marks(path)
    assert marks[1] is not None and marks[2] == marks[1]
    assert marks[3] is None  # stored `1`, sent `1.0`


async def _append_then_change_behind_the_store(store: Any, path: Path) -> None:
    """A row changed with its mark kept (no writer does that): sent as stored, it shows."""
    await store.append("s", [SessionCreated(), CustomEventRecorded(name="x", data=1)])
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE agentlog_events SET state = ? WHERE originator_version = 2",
            (b'{"type":"custom","name":"x","data":1 }',),
        )


async def test_a_marked_row_is_sent_as_stored(tmp_path: Path) -> None:
    # What makes a replay cheap: no decoding. Shown by a row changed behind the store's back
    # with its mark kept (no writer does that).
    path = tmp_path / "log.db"
    async with open_store(f"sqlite:///{path}") as store:
        await _append_then_change_behind_the_store(store, path)
        [(_, kind, flat)] = await store.read_flat("s", after=1)
    assert kind == "custom"
    assert flat.endswith(b',"type":"custom","name":"x","data":1 }')


async def test_rows_marked_by_another_encoding_or_none_are_encoded_again(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.append("s", [SessionCreated(title="t")])
        await store.append("s", [CustomEventRecorded(name="x", data=1)])
        with sqlite3.connect(path) as conn:
            # Another version's mark (its schema had a field this one lacks), and a row from
            # before the column: both in an order this version does not write.
            conn.execute("INSERT INTO agentlog_encodings (fingerprint) VALUES ('other')")
            conn.execute(
                "UPDATE agentlog_events SET state = ?, encoding = (SELECT id FROM "
                "agentlog_encodings WHERE fingerprint = 'other') WHERE originator_version = 1",
                (b'{"newer":true,"type":"session_created","title":"t"}',),
            )
            conn.execute(
                "UPDATE agentlog_events SET state = ?, encoding = NULL "
                "WHERE originator_version = 2",
                (b'{"data":1,"name":"x","type":"custom"}',),
            )
        flat = await store.read_flat("s")
        read = await store.read("s")
    assert flat == [(e.seq, e.type, encode_recorded(e)) for e in read]
    assert b"newer" not in flat[0][2]


async def test_a_file_from_before_the_marks_gains_the_column_and_reads_as_before(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.append("s", [SessionCreated(), CustomEventRecorded(name="x")])
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE agentlog_events DROP COLUMN encoding")
        conn.execute("DROP TABLE agentlog_encodings")
    async with open_store(f"sqlite:///{path}") as store:
        await store.append("s", [CustomEventRecorded(name="y")])
        flat = await store.read_flat("s")
        read = await store.read("s")
    assert flat == [(e.seq, e.type, encode_recorded(e)) for e in read]
    marks = _marks(path)
    assert marks[1] is None and marks[2] is None and marks[3] is not None


async def test_imported_rows_are_marked_when_this_version_encodes_them_the_same(
    tmp_path: Path,
) -> None:
    from agentlog.infra.sessions.importing import export_lines, import_session, parse_export

    path = tmp_path / "log.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.append("s", [SessionCreated(), CustomEventRecorded(name="x", data=1)])
        await store.append("s", [CustomEventRecorded(name="y", data=2)])
        lines = [line async for line in export_lines(store, "s")]
        # The second event in another key order: stored as the export gives it, so unmarked.
        lines[1] = lines[1].replace(
            b'"type":"custom","run_id":null', b'"run_id":null,"type":"custom"'
        )
        await import_session(store, parse_export(lines, rename_to="copy"))
        flat = await store.read_flat("copy")
        read = await store.read("copy")
    assert flat == [(e.seq, e.type, encode_recorded(e)) for e in read]
    with sqlite3.connect(path) as conn:
        marks = dict(
            conn.execute(
                "SELECT originator_version, encoding FROM agentlog_events "
                "WHERE originator_id = 'copy'"
            ).fetchall()
        )
    assert marks[1] is not None and marks[3] == marks[1]
    assert marks[2] is None


async def test_a_marked_row_is_framed_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with open_store(f"sqlite:///{path}") as store:
        await _append_then_change_behind_the_store(store, path)
        page = await store.read_framed("s", after=1, frame=b"id: %d\nevent: %b\ndata: %b\n\n")
    assert page.frames.startswith(b'id: 2\nevent: custom\ndata: {"seq":2,"position":2,')
    assert page.frames.endswith(b',"type":"custom","name":"x","data":1 }\n\n')


async def test_a_frame_without_its_three_places_is_refused(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path / 'log.db'}") as store:
        for frame in (b"%d %b", b"%b %d %b", b"%d %b %b %%", b"%d %s %b"):
            with pytest.raises(ValueError, match="a frame holds"):
                await store.read_framed("s", frame=frame)
