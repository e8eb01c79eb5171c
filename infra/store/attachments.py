"""Files sent with prompts, kept in agentlog's database: the port both backends implement.

A file is stored once per session under its sha256 (`agentlog_attachments`, primary key
(session_id, sha256)): the same bytes sent twice in one session are one row, the first
upload's media type and filename kept. Rows belong to their session alone, so a session's
files go with it in the delete's own transaction (agentlog.infra.sessions.deletion), and a
hash is never read across sessions. A fork copies the rows its copied events refer to
(agentlog.infra.sessions.forking): deleting the source leaves the fork's files.

The log holds only the reference (`AttachedFile` on `run_started`). Files are written before
the `run_started` that names them: a start refused after that (a run already active) leaves
rows that no event names, readable only with the session's own tokens, and deleted with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    media_type: str
    size: int
    filename: str | None
    data: bytes


class Attachments(Protocol):
    """The `agentlog_attachments` table of one database."""

    async def put(self, session_id: str, files: Sequence[StoredFile]) -> int:
        """Store each file unless the session holds its hash already; returns how many rows
        were added. Raises UnknownSession, or SessionDeleted after the tombstone (checked in
        the write's own transaction: a deleted session never gets a file back)."""
        ...

    async def get(self, session_id: str, sha256: str) -> StoredFile | None:
        """The session's file with that hash; None when this session holds none."""
        ...

    async def of_session(self, session_id: str) -> list[StoredFile]:
        """Every file the session holds, by hash (an export carries them)."""
        ...

    async def copy(self, from_session: str, to_session: str, sha256s: Sequence[str]) -> int:
        """Copy those of `from_session`'s files into `to_session` (a fork); returns how many
        rows were added."""
        ...
