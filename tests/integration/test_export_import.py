"""Export and import beyond one backend's contract (that is tests/contract/test_importing.py):
a session moves between SQLite and PostgreSQL, and a file that is not an export is refused,
naming its first bad line."""

from __future__ import annotations

import pytest

from agentlog.infra.sessions.importing import ImportRefused, import_session, parse_export
from agentlog.infra.store.opening import open_store
from tests.support.exports import export, fill, without_positions


async def test_a_session_moves_between_sqlite_and_postgres(
    sqlite_url: str, postgres_url: str
) -> None:
    async with open_store(sqlite_url) as lite:
        await fill(lite)
        from_sqlite = await export(lite, "chat-1")
    async with open_store(postgres_url) as pg:
        await import_session(pg, parse_export(from_sqlite, rename_to="moved"))
        from_postgres = await export(pg, "moved")
    assert without_positions(from_postgres) == [
        line.replace(b'"session_id":"chat-1"', b'"session_id":"moved"')
        for line in without_positions(from_sqlite)
    ]
    async with open_store(sqlite_url) as lite:
        await import_session(lite, parse_export(from_postgres))
        assert without_positions(await export(lite, "moved")) == without_positions(from_postgres)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "the file holds no events"),
        ([b"not json"], "line 1: not an exported event"),
        (
            [b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"nope"}'],
            "line 1: not an event agentlog knows",
        ),
        (
            [b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00","type":"session_created"}'],
            "line 1: time 2024-01-01T00:00:00 has no timezone",
        ),
        (
            [b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"heartbeat"}'],
            "line 1: seq 1 is heartbeat; a session begins with session_created",
        ),
        (
            [
                b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"session_created"}',
                b"",
                b'{"seq":3,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"heartbeat"}',
            ],
            "line 3: seq 3 where seq 2 was expected",
        ),
        (
            [
                b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"session_created"}',
                b'{"seq":2,"session_id":"b","time":"2024-01-01T00:00:00Z","type":"heartbeat"}',
            ],
            "line 2: session 'b', but the file began with session 'a'",
        ),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_by_line(lines: list[bytes], message: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        parse_export(lines)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"transcript":{"project_key":"p"},"entry":{}}', "not a transcript entry"),
        (
            b'{"transcript":{"project_key":"","agent_session":"a"},"entry":{}}',
            "a transcript entry needs",
        ),
        (b'{"transcript":{"project_key":"p","agent_session":"a"},"entry":[1]}', "not a tran"),
    ],
)
def test_a_malformed_transcript_line_is_refused_naming_it(line: bytes, why: str) -> None:
    first = (
        b'{"seq":1,"position":1,"session_id":"t","time":"2026-01-01T00:00:00Z",'
        b'"type":"session_created","run_id":null,"title":null,"metadata":{}}'
    )
    with pytest.raises(ImportRefused, match=f"line 2: {why}"):
        parse_export([first, line])
    with pytest.raises(ImportRefused, match="line 1: a transcript entry before"):
        parse_export([line, first])
