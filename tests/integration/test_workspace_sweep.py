"""Deleting a session removes its working directory on every host, not only the deleting one:
each instance sweeps its own workspace root for sessions whose log ends in a tombstone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agentlog.domain.events import SessionCreated
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.run.home import prepare_run_home
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.sessions.workspaces import directory_name, noted_workspaces, sweep_deleted
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue("postgres_url"))


def workspace_of(root: Path, session_id: str, tmp_path: Path) -> Path:
    """The directory a run of `session_id` on the host with `root` works in (as a run makes it)."""
    prepare_run_home(root, tmp_path / "homes", session_id, "run_x")
    workspace = root / directory_name(session_id)
    (workspace / "notes.txt").write_text("the agent's work")
    return workspace


async def test_each_host_removes_its_own_directory_of_a_session_deleted_elsewhere(
    store_url: str, tmp_path: Path
) -> None:
    here, there = tmp_path / "host-a", tmp_path / "host-b"
    async with open_store(store_url) as store:
        for session_id in ("gone", "kept"):
            await store.append(session_id, [SessionCreated()])
        gone_here, gone_there = (
            workspace_of(here, "gone", tmp_path),
            workspace_of(there, "gone", tmp_path),
        )
        kept_there = workspace_of(there, "kept", tmp_path)
        # A directory of a session this database does not know: another deployment's.
        foreign = workspace_of(there, "not-in-this-database", tmp_path)

        await SessionDeleter(store, workspace_root=here).delete("gone")
        assert not gone_here.exists()  # the deleting host's, at once
        assert gone_there.exists()  # the other host's waits for that host's sweep

        assert await sweep_deleted(store, there) == ["gone"]
        assert not gone_there.exists()
        assert kept_there.exists() and foreign.exists()
        assert set(noted_workspaces(there)) == {"kept", "not-in-this-database"}
        assert await sweep_deleted(store, there) == []  # nothing twice


async def test_a_server_sweeps_its_directories_of_deleted_sessions_when_it_starts(
    sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "workspaces"
    async with open_store(sqlite_url) as store:
        await store.append("gone", [SessionCreated()])
        workspace = workspace_of(root, "gone", tmp_path)
        await SessionDeleter(store).delete("gone")  # on a host without this directory
        assert workspace.exists()

        agent = AgentConfig(workspace_root=root, run_home_root=tmp_path / "homes")
        app = create_app(Settings(agent=agent), store=store)
        async with TestClient(TestServer(app)):
            async with asyncio.timeout(10):
                while workspace.exists():
                    await asyncio.sleep(0.05)
        assert noted_workspaces(root) == {}
