"""The projection store's contract (agentlog.infra.store.projection_store.ProjectionStore), on
every backend: rows and checkpoint commit together, or not at all."""

from __future__ import annotations

import sys

import pytest

from agentlog.domain.events import CustomEventRecorded, RunStarted, SessionCreated
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projector import Projector
from agentlog.projections import sessions, ui_messages
from tests.integration.projection_helpers import a_run, folded, seed, stored, whole_log


async def test_rows_and_checkpoint_round_trip(store: StoreBase) -> None:
    await store.append("a", [SessionCreated(title="café ✓"), *a_run("r1")])
    await store.append("b", [SessionCreated(), RunStarted(run_id="r2", prompt="x")])
    events = await whole_log(store)
    async with open_projection_store(store) as projections:
        states = {"a": ui_messages.fold(events[:-2]), "b": ui_messages.fold(events[-2:])}
        summaries = sessions.fold(events)
        async with projections.claim() as claim:
            assert claim.checkpoint.position == 0
            assert await claim.load(["a", "b"]) == ({}, {})
            assert await claim.save(states, {}, summaries, events[-1].position)

        assert (await projections.checkpoint()).position == events[-1].position
        assert await projections.read_state("a") == states["a"]
        assert await projections.read_state("b") == states["b"]
        assert await projections.read_summary("a") == summaries["a"]
        assert await projections.read_summaries(None, 10) == [summaries["a"], summaries["b"]]
        assert await projections.read_summaries("a", 10) == [summaries["b"]]
        assert await projections.read_state("nobody") is None
        async with projections.claim() as claim:
            assert await claim.load(["b", "nobody"]) == ({"b": states["b"]}, {"b": summaries["b"]})


async def test_a_failure_after_the_rows_before_the_commit_moves_nothing(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(store, sessions_count=2)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        before = await stored(projections), await projections.checkpoint()
        await store.append("s000", a_run("r9"))
        await store.append("s001", [CustomEventRecorded(name="x")])

        def crash(*args: object) -> None:
            raise RuntimeError("crash after the states, before the summaries and the commit")

        # The states are written, then the summaries fail: the transaction must roll back.
        # Each backend's module writes the summaries through its own `_write_summaries`.
        module = sys.modules[type(projections).__module__]
        monkeypatch.setattr(module, "_write_summaries", crash)
        with pytest.raises(RuntimeError, match="crash"):
            await projector.catch_up()
        assert (await stored(projections), await projections.checkpoint()) == before

        monkeypatch.undo()
        await projector.catch_up()
        assert await stored(projections) == await folded(store)
