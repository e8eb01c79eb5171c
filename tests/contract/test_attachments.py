"""The attachments table (agentlog.infra.store.attachments) on every backend: a file is stored
once per session and hash, read only through its own session, refused to a deleted session,
copied by a fork, carried by an export, and deleted with its session."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest

from agentlog.domain.errors import SessionDeleted, UnknownSession
from agentlog.domain.events import SessionCreated
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.sessions.importing import (
    export_lines,
    import_session,
    is_attachment_line,
    parse_export,
)
from agentlog.infra.store.attachments import StoredFile
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.imported_session import ImportRefused


def text_file(text: str, filename: str | None = "notes.txt") -> StoredFile:
    data = text.encode()
    return StoredFile(
        sha256=hashlib.sha256(data).hexdigest(),
        media_type="text/plain",
        size=len(data),
        filename=filename,
        data=data,
    )


async def new_session(store: StoreBase) -> str:
    session_id = "s-" + uuid.uuid4().hex[:12]
    await store.append(session_id, [SessionCreated()])
    return session_id


async def test_the_same_bytes_twice_are_one_row(store: StoreBase) -> None:
    attachments = store.backend.attachments()
    session_id = await new_session(store)
    first = text_file("the same bytes", "a.txt")
    assert await attachments.put(session_id, [first]) == 1
    assert await attachments.put(session_id, [text_file("the same bytes", "b.txt")]) == 0
    assert await attachments.get(session_id, first.sha256) == first  # the first upload's name
    marker = "the same bytes"
    assert await store.backend.tables_holding(marker) == ["agentlog_attachments"]


async def test_a_hash_is_read_only_through_the_session_that_holds_it(store: StoreBase) -> None:
    attachments = store.backend.attachments()
    owner, other = await new_session(store), await new_session(store)
    stored = text_file("private " + uuid.uuid4().hex)
    await attachments.put(owner, [stored])
    assert await attachments.get(other, stored.sha256) is None
    assert await attachments.get(owner, "0" * 64) is None


async def test_a_session_that_does_not_exist_gets_no_file(store: StoreBase) -> None:
    with pytest.raises(UnknownSession):
        await store.backend.attachments().put("never-created", [text_file("x")])


async def test_a_file_goes_with_its_session_and_never_comes_back(store: StoreBase) -> None:
    attachments = store.backend.attachments()
    doomed, kept = await new_session(store), await new_session(store)
    marker = "MARKER-" + uuid.uuid4().hex
    stored = text_file(marker)
    await attachments.put(doomed, [stored])
    await attachments.put(kept, [text_file("kept " + marker)])

    await SessionDeleter(store).delete(doomed)

    assert await attachments.get(doomed, stored.sha256) is None
    assert await attachments.get(kept, text_file("kept " + marker).sha256) is not None
    assert await store.backend.tables_holding(marker) == ["agentlog_attachments"]  # kept's
    with pytest.raises(SessionDeleted):
        await attachments.put(doomed, [stored])
    assert await attachments.get(doomed, stored.sha256) is None


async def test_a_fork_keeps_its_copy_when_the_source_is_deleted(store: StoreBase) -> None:
    attachments = store.backend.attachments()
    source, fork = await new_session(store), await new_session(store)
    stored = text_file("forked " + uuid.uuid4().hex)
    await attachments.put(source, [stored, text_file("not referred to")])

    assert await attachments.copy(source, fork, [stored.sha256]) == 1
    await SessionDeleter(store).delete(source)

    assert await attachments.get(fork, stored.sha256) == stored
    assert await attachments.get(fork, text_file("not referred to").sha256) is None


async def test_an_export_carries_the_files_and_an_import_restores_them(
    store: StoreBase,
) -> None:
    attachments = store.backend.attachments()
    session_id = await new_session(store)
    stored = text_file("exported " + uuid.uuid4().hex)
    await attachments.put(session_id, [stored])

    lines = [line async for line in export_lines(store, session_id)]
    assert sum(is_attachment_line(line) for line in lines) == 1
    await import_session(store, parse_export(lines, rename_to=session_id + "-copy"))

    assert await attachments.get(session_id + "-copy", stored.sha256) == stored
    tampered = [
        line.replace(stored.sha256.encode(), b"0" * 64) if is_attachment_line(line) else line
        for line in lines
    ]
    with pytest.raises(ImportRefused):
        parse_export(tampered, rename_to="never")


async def test_files_written_while_the_session_is_deleted_never_outlive_it(
    store: StoreBase,
) -> None:
    """Writers keep adding files until they are refused; the delete lands among them."""
    attachments = store.backend.attachments()
    session_id = await new_session(store)
    marker = "RACE-" + uuid.uuid4().hex
    written = [text_file(f"{marker} before")]
    await attachments.put(session_id, written)

    async def keep_writing(writer: int) -> bool:
        for n in range(100):
            file = text_file(f"{marker} {writer} {n}")
            try:
                await attachments.put(session_id, [file])
            except SessionDeleted:
                return True
            written.append(file)
            await asyncio.sleep(0)
        return False

    async def delete_soon() -> None:
        await asyncio.sleep(0.01)
        await SessionDeleter(store).delete(session_id)

    *refused, _ = await asyncio.gather(*(keep_writing(w) for w in range(4)), delete_soon())

    assert all(refused)  # every writer was refused in the end
    assert [await attachments.get(session_id, f.sha256) for f in written] == [None] * len(written)
    assert await store.backend.tables_holding(marker) == []
