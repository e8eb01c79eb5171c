"""eventsourcing's own PostgreSQL recorder reads agentlog's log, in order, decodable."""

from __future__ import annotations

import asyncio

from agentlog.domain.events import CustomEventRecorded, RunStarted, SessionCreated
from agentlog.infra.postgres.eventsourcing_bridge import AgentlogMapper, application_recorder
from agentlog.infra.store.opening import open_store, parse_database_url


async def test_eventsourcing_notification_log_reads_agentlog_events(postgres_url: str) -> None:
    async with open_store(postgres_url) as store:
        await store.append("a", [SessionCreated()])
        await store.append("b", [SessionCreated(), RunStarted(run_id="r", prompt="hi")])
        await store.append("a", [CustomEventRecorded(name="x", data={"k": [1, 2]})])
        ours = await store.read_all()

    url = parse_database_url(postgres_url)

    def read_with_eventsourcing() -> list[tuple[int, str, int, str, object]]:
        recorder = application_recorder(url.dsn, url.schema)
        mapper = AgentlogMapper()
        try:
            notifications = recorder.select_notifications(start=2, limit=10)
            assert recorder.max_notification_id() == 4
            return [
                (
                    n.id,
                    str(n.originator_id),
                    n.originator_version,
                    n.topic,
                    mapper.to_domain_event(n),
                )
                for n in notifications
            ]
        finally:
            recorder.datastore.close()

    theirs = await asyncio.to_thread(read_with_eventsourcing)
    assert theirs == [(e.position, e.session_id, e.seq, e.type, e.event) for e in ours[1:]]
