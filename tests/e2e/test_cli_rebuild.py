"""`agentlog rebuild`: the command's parser, its progress bar and its summary line."""

from __future__ import annotations

import argparse
import io

import pytest

from agentlog.domain.errors import UnknownSession
from agentlog.infra.store.opening import open_projection_store, open_store
from agentlog.transport.cli.rebuild import ProgressBar, add_rebuild_command, run_rebuild
from agentlog.transport.settings import Settings
from tests.integration.projection_helpers import folded, seed, stored

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


async def test_rebuild_prints_progress_and_a_summary(database_url: str) -> None:
    async with open_store(database_url) as store:
        await seed(store, sessions_count=3)
        total = await store.last_position()
    progress, summary = io.StringIO(), io.StringIO()

    code = await run_rebuild(
        Settings(database_url=database_url), None, progress_stream=progress, summary_stream=summary
    )

    assert code == 0
    bar = progress.getvalue()
    assert bar.startswith("\r[") and bar.endswith("\n")
    assert f"{total}/{total} events" in bar and "events/s" in bar and "ETA 0:00" in bar
    line = summary.getvalue()
    assert line.startswith(f"agentlog: rebuilt 3 sessions from {total} events in ")
    async with open_store(database_url) as store, open_projection_store(store) as projections:
        assert await stored(projections) == await folded(store)
        assert (await projections.checkpoint()).generation == 2


async def test_rebuild_of_one_session(database_url: str) -> None:
    async with open_store(database_url) as store:
        await seed(store, sessions_count=2)
    summary = io.StringIO()
    settings = Settings(database_url=database_url)
    code = await run_rebuild(
        settings, "s001", progress_stream=io.StringIO(), summary_stream=summary
    )
    assert code == 0
    assert summary.getvalue().startswith("agentlog: rebuilt session 's001' from ")
    with pytest.raises(UnknownSession):
        await run_rebuild(settings, "nobody", progress_stream=io.StringIO())


def test_the_command_takes_an_optional_session(backend: str) -> None:
    parser = argparse.ArgumentParser()
    add_rebuild_command(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["rebuild"]).session_id is None
    assert parser.parse_args(["rebuild", "--session", "abc"]).session_id == "abc"


def test_the_progress_line_shows_rate_and_eta(backend: str) -> None:
    line = ProgressBar.line(25_000, 100_000, 0.5)
    assert "[#######" in line and "25,000/100,000 events" in line
    assert "50,000 events/s" in line and "ETA 0:02" in line
    assert "ETA 1:00:00" in ProgressBar.line(1, 3601, 1.0)
