"""The token revocations' contract (agentlog.domain.ports.token_revocations), on every backend:
a revoked id is seen by every store on the database, at once."""

from __future__ import annotations

import time

from tests.conftest import StoreOpener


async def test_a_revoked_token_is_seen_by_every_store_on_the_database(
    open_test_store: StoreOpener,
) -> None:
    later = int(time.time()) + 3600
    async with open_test_store() as one, open_test_store() as other:
        here, there = one.backend.token_revocations(), other.backend.token_revocations()
        assert await there.revoked(["t1", "t2"]) == set()
        assert await here.revoke("t1", later) is True
        assert await here.revoke("t1", later) is False  # already revoked
        assert await there.revoked(["t1", "t2"]) == {"t1"}
        assert await there.revoked([]) == set()


async def test_an_expired_revocation_is_pruned(open_test_store: StoreOpener) -> None:
    async with open_test_store() as store:
        revocations = store.backend.token_revocations()
        assert await revocations.revoke("gone", int(time.time()) - 1)
        assert await revocations.revoke("live", int(time.time()) + 3600)
        # The token would be refused as expired anyway: the next revoke prunes its row.
        assert await revocations.revoked(["gone", "live"]) == {"live"}
