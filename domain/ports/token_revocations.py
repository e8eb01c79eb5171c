"""The port for revoked session tokens."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class TokenRevocations(Protocol):
    """Revoked session tokens, by id, kept in the database so that every instance sharing it
    refuses them (a signed token carries no state: revoking one is remembering its id).

    Contract (tests/contract/test_token_revocations.py, on every backend):
    - `revoke(token_id, expires_at)` records the id; True the first time, False when it was
      already revoked. `expires_at` (unix seconds) is when the token would have expired
      anyway: after it the row may be pruned, since the token is refused as expired.
    - `revoked(ids)` is the subset of `ids` revoked, seen by every store on the database as
      soon as `revoke` returned.
    """

    async def revoke(self, token_id: str, expires_at: int) -> bool: ...

    async def revoked(self, token_ids: Collection[str]) -> set[str]: ...
