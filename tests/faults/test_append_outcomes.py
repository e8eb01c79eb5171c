"""Scenario 5: "outcome unknown" only when it is. The fault proxy breaks the writer's
connection at a chosen statement, on the real PostgreSQL store.

- broken before COMMIT (at BEGIN): nothing was written; the append is retried transparently
  and the caller just sees its seqs;
- broken at COMMIT, after the server got it: the real OutcomeUnknown; the events are in the
  log, and a retry with the same idempotency key returns the same seqs and writes nothing;
- broken at COMMIT, before the server got it: OutcomeUnknown too (the client cannot tell),
  and this time nothing is in the log; the retry with the key writes it once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.postgres.event_store import PostgresEventStore
from agentlog.infra.store.group_commit import OutcomeUnknown
from tests.faults.fault_proxy import FaultProxy
from tests.faults.servers import PrivatePostgres

pytestmark = pytest.mark.slow


@pytest.fixture
async def proxied_store(
    private_postgres: PrivatePostgres, proxies: list[FaultProxy]
) -> AsyncIterator[tuple[PostgresEventStore, FaultProxy]]:
    proxy = FaultProxy("127.0.0.1", private_postgres.port).start()
    proxies.append(proxy)
    url = f"postgresql://postgres@{proxy.host_port}/postgres"
    store = await PostgresEventStore(url, timeout=3.0).open()
    try:
        yield store, proxy
    finally:
        await store.close()


def event(n: int) -> CustomEventRecorded:
    return CustomEventRecorded(name="n", data=n)


async def test_a_connection_lost_before_commit_is_retried_and_written_once(
    proxied_store: tuple[PostgresEventStore, FaultProxy],
) -> None:
    store, proxy = proxied_store
    await store.append("s", [SessionCreated()])
    proxy.cut_when_sent(b"BEGIN", forward=False)

    seqs = await store.append("s", [event(1)], idempotency_key="k1")  # keyed: the locked path

    assert proxy.triggered == 1
    assert seqs == [2]
    assert [e.seq for e in await store.read("s")] == [1, 2]
    assert store.commit_stats.retries >= 1 and store.commit_stats.outcome_unknown == 0


@pytest.mark.parametrize("server_got_commit", [True, False])
async def test_a_connection_lost_at_commit_is_outcome_unknown_and_a_keyed_retry_is_exact(
    proxied_store: tuple[PostgresEventStore, FaultProxy], server_got_commit: bool
) -> None:
    store, proxy = proxied_store
    await store.append("s", [SessionCreated()])
    proxy.cut_when_sent(b"COMMIT", forward=server_got_commit)

    with pytest.raises(OutcomeUnknown) as raised:
        await store.append("s", [event(1)], idempotency_key="k1")

    assert raised.value.code == "append_outcome_unknown"
    assert proxy.triggered == 1
    in_log = [e.seq for e in await store.read("s")]
    assert in_log == ([1, 2] if server_got_commit else [1])
    # The caller's retry, with the same key, is exact either way.
    assert await store.append("s", [event(1)], idempotency_key="k1") == [2]
    events = await store.read("s")
    assert [e.seq for e in events] == [1, 2]
    assert [e.event for e in events[1:]] == [event(1)]
    assert store.commit_stats.outcome_unknown == 1
