"""Deletion is a rule of the store, on every backend: once the tombstone has committed, nothing
of that session is accepted again (no append, no run, no transcript entry, no projection row),
whatever was in flight when it committed. Writers of every kind keep writing through the delete;
the store itself must refuse them, with no HTTP check in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Awaitable, Callable

from agentlog.domain.errors import SessionDeleted
from agentlog.domain.events import CustomEventRecorded, RunStarted, SessionCreated, TextDelta
from agentlog.domain.events import SessionDeleted as Tombstone
from agentlog.domain.ports.event_store import RunFence
from agentlog.infra.agent.sdk.session_store import LogSessionStore
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projector import Projector

# Writes each writer gets acknowledged before the delete, and refusals it must see after it.
BEFORE, AFTER = 15, 5
DEADLINE_SECONDS = 10.0


class Writer:
    """One kind of write, repeated: what was acknowledged (and its seqs) and what was refused."""

    def __init__(self, name: str, write: Callable[[int], Awaitable[list[int]]]) -> None:
        self.name = name
        self.write = write
        self.acknowledged: list[list[int]] = []
        self.refused_after_delete = 0
        self.acknowledged_after_delete = 0

    async def run(self, deleted: asyncio.Event, stop: asyncio.Event) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            was_deleted = deleted.is_set()
            try:
                seqs = await self.write(n)
            except SessionDeleted:
                if was_deleted:
                    self.refused_after_delete += 1
                await asyncio.sleep(0.005)
                continue
            self.acknowledged.append(seqs)
            if was_deleted:
                self.acknowledged_after_delete += 1
            await asyncio.sleep(0)


async def test_nothing_is_accepted_for_a_session_after_its_tombstone(store: StoreBase) -> None:
    marker = "UNDEAD-" + uuid.uuid4().hex
    await store.append("doomed", [SessionCreated(title="doomed")])
    transcripts = LogSessionStore(store).for_session("doomed")
    agent_session = str(uuid.uuid4())

    async def plain(n: int) -> list[int]:
        return await store.append("doomed", [CustomEventRecorded(name="w", data={"m": marker})])

    async def keyed(n: int) -> list[int]:
        event = CustomEventRecorded(name="k", data={"m": marker})
        return await store.append("doomed", [event], idempotency_key=f"k-{n}")

    fences: list[RunFence] = []

    async def streaming_runs(n: int) -> list[int]:
        # A new run every ten writes (its run index row is written in the same transaction),
        # streaming fenced deltas in between, as a run's recorder does.
        if n % 10 == 0:
            run_id = f"r{n}"
            [started] = await store.append("doomed", [RunStarted(run_id=run_id, prompt=marker)])
            fences.append(RunFence(run_id=run_id, token=started))
            return [started]
        delta = TextDelta(run_id=fences[-1].run_id, message_id="m", block_index=0, delta=marker)
        return await store.append("doomed", [delta], fence=fences[-1])

    async def transcript(n: int) -> list[int]:
        entry = {"type": "user", "uuid": str(uuid.uuid4()), "message": {"content": marker}}
        await transcripts.append({"project_key": "p", "session_id": agent_session}, [entry])
        return []

    writers = [
        Writer(name, write)
        for name, write in [
            ("plain", plain),
            ("keyed", keyed),
            ("streaming runs", streaming_runs),
            ("transcript", transcript),
        ]
    ]
    deleted, stop = asyncio.Event(), asyncio.Event()
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)

        async def project() -> None:
            while not stop.is_set():
                await projector.catch_up()
                await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(w.run(deleted, stop)) for w in writers]
        tasks.append(asyncio.create_task(project()))
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                while any(len(w.acknowledged) < BEFORE for w in writers):
                    await asyncio.sleep(0.01)
            deletion = await SessionDeleter(store).delete("doomed")
            deleted.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DEADLINE_SECONDS):
                    while any(w.refused_after_delete < AFTER for w in writers):
                        await asyncio.sleep(0.01)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        await projector.catch_up()

        for writer in writers:
            assert (writer.name, writer.acknowledged_after_delete) == (writer.name, 0)
            assert (writer.name, writer.refused_after_delete >= AFTER) == (writer.name, True)
            # An append acknowledged while the delete waited committed before the tombstone.
            late = [s for seqs in writer.acknowledged for s in seqs if s >= deletion.tombstone_seq]
            assert (writer.name, late) == (writer.name, [])
        [tombstone] = await store.read("doomed")
        assert isinstance(tombstone.event, Tombstone) and tombstone.seq == deletion.tombstone_seq
        assert await store.backend.tables_holding(marker) == []
        summary = await projector.read_summary("doomed")
        assert summary is not None and summary.status == "deleted"
        assert (await verify_log(store)).problems == []
