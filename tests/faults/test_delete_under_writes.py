"""DELETE under concurrent appends and a streaming run, on SQLite (one `agentlog serve`: a SQLite
file has one server) and PostgreSQL (two `agentlog serve` processes): once DELETE has answered
with the tombstone, nothing of the session is acknowledged, stored or streamed again (issue 19:
a deleted session came back to life).

Each round creates a session, starts a run streaming on one instance, keeps four writers
appending as fast as both instances answer and a follower on each instance, deletes through
one instance, and keeps everyone going a second longer. Then it counts, from the database
itself: the session's log is its tombstone alone, no append was acknowledged at or after the
tombstone's seq, no follower received a frame after it, and a new run is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from agentlog.domain.events import SessionDeleted as Tombstone
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.opening import open_store
from tests.faults.conftest import database_env, start_server
from tests.faults.scenario import Follower, Writer
from tests.support.server import ServerProcess

ROUNDS = 5
BEFORE_DELETE = 0.5
AFTER_DELETE = 1.0
# A run that is still working when the delete comes: its tool sleeps through the round.
LONG_RUN = "[scenario:long-tool] Run the slow operation for 4 seconds"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_deleted_session_stays_deleted_under_concurrent_appends_and_a_streaming_run(
    database: str,
    request: pytest.FixtureRequest,
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    env = database_env(database, request, tmp_path)
    url = env["AGENTLOG_DATABASE_URL"]
    # A SQLite file has one server (a second refuses to start); PostgreSQL serves two.
    count = 1 if database == "sqlite" else 2
    instances = [
        await asyncio.to_thread(start_server, servers, tmp_path, env) for _ in range(count)
    ]
    findings: list[str] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http, open_store(url) as store:
        for round_ in range(ROUNDS):
            session = f"doomed-{round_}"
            findings += await _one_round(http, store, instances, session)
        report = await verify_log(store)
    print(f"\ndelete under writes ({database}, {ROUNDS} rounds): {findings or 'held'}")
    assert findings == []
    assert report.problems == []


async def _one_round(
    http: aiohttp.ClientSession, store: object, instances: list[ServerProcess], session: str
) -> list[str]:
    first, second = instances[0].url, instances[-1].url
    async with http.post(f"{first}/v1/sessions", json={"id": session}) as response:
        assert response.status == 201
    async with http.post(f"{second}/v1/sessions/{session}/runs", json={"prompt": LONG_RUN}) as r:
        assert r.status == 202, await r.text()
    writers = [
        Writer(http, base, session, f"w{n}", pause=0)
        for n, base in enumerate([first, second, first, second])
    ]
    followers = [Follower(http, base, session) for base in (first, second)]
    tasks = [asyncio.create_task(x.run()) for x in [*writers, *followers]]
    try:
        await asyncio.sleep(BEFORE_DELETE)
        async with http.delete(f"{first}/v1/sessions/{session}") as response:
            assert response.status == 200, await response.text()
            tombstone_seq = (await response.json())["tombstone_seq"]
        await asyncio.sleep(AFTER_DELETE)
        async with http.post(f"{second}/v1/sessions/{session}/runs", json={"prompt": "hi"}) as r:
            new_run = r.status
    finally:
        for writer in writers:
            writer.stop()
        await asyncio.wait(tasks[: len(writers)], timeout=30)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # The run the delete cancelled may still be stopping: give it its time to try to write.
    await asyncio.sleep(AFTER_DELETE)

    found: list[str] = []
    log = await store.read(session)  # type: ignore[attr-defined]
    if [(r.seq, type(r.event)) for r in log] != [(tombstone_seq, Tombstone)]:
        found.append(f"{session}: log after the delete is {[(r.seq, r.type) for r in log][:5]}")
    late = [s for w in writers for s in w.acknowledged.values() if s >= tombstone_seq]
    if late:
        found.append(f"{session}: {len(late)} appends acknowledged after the tombstone")
    streamed = [s for f in followers for s in f.received if s > tombstone_seq]
    if streamed:
        found.append(f"{session}: {len(streamed)} frames streamed after the tombstone")
    if new_run != 410:
        found.append(f"{session}: a new run after the delete answered {new_run}")
    return found
