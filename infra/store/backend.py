"""The Backend port: everything agentlog keeps in one database, built by one `backend.py`.

It lives in infra/store, not domain/ports, because what it hands out are infra adapters
(projection rows, the CLI's transcripts, an imported session's stored rows), whose own ports
live here too; the domain never sees a backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agentlog.domain.ports.run_lock import RunLock
from agentlog.domain.ports.token_revocations import TokenRevocations
from agentlog.domain.ports.wakeups import Wakeups
from agentlog.infra.store.attachments import Attachments
from agentlog.infra.store.byte_bounded import DEFAULT_CACHE_BYTES
from agentlog.infra.store.import_batches import BetweenBatches, Written
from agentlog.infra.store.imported_session import ImportedSession
from agentlog.infra.store.projection_store import ProjectionStore
from agentlog.infra.store.transcripts import TranscriptTables


@dataclass(frozen=True)
class StoreOptions:
    """What every backend's `open_store(url, options)` is given besides its URL."""

    wakeups: Wakeups | None = None  # None: the backend chooses its own
    max_event_bytes: int = 1024 * 1024
    db_timeout: float = 5.0
    cache_bytes: int = DEFAULT_CACHE_BYTES  # AGENTLOG_CACHE_BYTES: every cache's share of it


class Backend(Protocol):
    """One database's adapters, beside the event store that its `backend.py` opened.

    A database is one folder of agentlog.infra (sqlite/, postgres/) whose `backend.py` names the
    URL schemes it serves (`SCHEMES`), parses its URLs (`parse_url`) and opens its event store
    (`open_store(url, options)`: with the wake-ups it is given, else its own), which carries this
    backend as `store.backend`. agentlog.infra.store.opening picks the folder by the URL's
    scheme; nothing else names a backend's classes.

    Contract (tests/contract runs every port below on every backend):
    - `projection_store()` and `transcript_tables()` keep their rows beside the log (same
      file, same schema); the projection store is new and unopened: its caller opens and
      closes it.
    - `attachments()` keeps files sent with prompts, once per session and hash, beside the
      log (agentlog.infra.store.attachments); `delete_session` removes the session's.
    - `token_revocations()` keeps revoked session token ids in the database, for every
      process that uses it.
    - `run_lock()` is the run lock this database can share between the processes that use it
      (in the database itself), or one of this process when it cannot; its caller closes it.
    - `delete_session` leaves the session's tombstone at the next seq and position in one
      transaction under the append lock (from then on the session refuses every append), then
      removes the session's content; returns (tombstone seq, events removed); raises
      UnknownSession, SessionDeleted (after removing what a dead process's delete left).
    - `import_session` writes the session's events as stored (seqs, times, JSON) at the end of
      the log in batches, each a transaction holding the append lock briefly, and publishes
      the session with its last batch (agentlog.infra.store.import_batches: until then its
      id refuses appends, SessionImporting, and reads find no session; a failure removes
      what was written); returns the positions of its first and last events; raises
      SessionAlreadyExists, SessionImporting. `between_batches`, when given, is awaited
      after each batch but the last. Neither wakes readers: the caller publishes.
    - `tables_holding(text)` names every table of the database (the log's, the projections',
      the transcripts', any other) with a row whose text holds `text`, stored bytes included:
      what proves that a deleted session left nothing of its content behind.
    - `refresh_statistics()` brings the query planner's statistics of the log's tables up to
      date (sampled, so its cost does not grow with the log); called after bulk writes
      (agentlog.infra.store.statistics), not on the append path.
    - `connection_failed(exc)` says whether `exc` means the database could not be reached
      (a 503 to retry), as opposed to a statement that failed.
    """

    @property
    def serves_one_process(self) -> bool:
        """True when one server process serves the database (SQLite's file): its run lock and
        wake-ups are then that process's own, and nobody else needs them."""
        ...

    def projection_store(self) -> ProjectionStore: ...

    def transcript_tables(self) -> TranscriptTables: ...

    def run_lock(self) -> RunLock: ...

    def token_revocations(self) -> TokenRevocations: ...

    def attachments(self) -> Attachments: ...

    async def deployment_identity(self) -> str:
        """Names this database among all others: the same for every process on it (however
        its URL is spelled), another for another database."""
        ...

    async def delete_session(self, session_id: str, reason: str) -> tuple[int, int]: ...

    async def import_session(
        self, session: ImportedSession, between_batches: BetweenBatches | None = None
    ) -> Written: ...

    async def importing_sessions(self, session_ids: list[str]) -> set[str]:
        """Those of `session_ids` being imported or forked: no sessions yet, to any read."""
        ...

    async def clear_dead_imports(self) -> list[str]:
        """Remove the invisible partials of imports and forks whose process died
        (agentlog.infra.store.import_batches.clear_dead_imports); their session ids."""
        ...

    async def positions_removed_by_imports(self) -> int:
        """Events that removed partial imports took out of the log (gaps in its positions)."""
        ...

    async def tables_holding(self, text: str) -> list[str]: ...

    async def refresh_statistics(self) -> None: ...

    def connection_failed(self, exc: BaseException) -> bool: ...
