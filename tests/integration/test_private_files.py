"""Files are private (issue 22): the workspace root is 0700 and what the server writes in it
0600/0700; the SQLite database and its WAL and SHM are 0600, so another local user cannot read
a prompt from them. Tried as that user too (`nobody`) when the tests run as root."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlog.domain.events import SessionCreated
from agentlog.infra.agent.run.home import prepare_run_home
from agentlog.infra.sessions.workspaces import SIDECARS
from agentlog.infra.store.opening import open_store

SECRET_PROMPT = "the launch code is 0000"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every local user may enter, as /tmp is (pytest's own is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="agentlog-private-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def another_user_reads(path: Path) -> bool:
    if os.geteuid() != 0:
        return False  # only root can become another user; the modes are checked regardless
    done = subprocess.run(["cat", str(path)], user="nobody", capture_output=True, timeout=30)
    return done.returncode == 0


def test_the_workspace_root_and_what_the_server_writes_there_are_private(
    shared_dir: Path,
) -> None:
    root = shared_dir / "agentlog-workspaces"
    home = prepare_run_home(root, shared_dir / "homes", "s-1", "run-1")
    workspace = Path(home.cwd)
    (sidecar,) = (root / SIDECARS).iterdir()
    assert mode(root) == 0o700
    assert mode(workspace) == 0o700
    assert mode(root / SIDECARS) == 0o700
    assert mode(sidecar) == 0o600
    assert not another_user_reads(sidecar)
    # A root made before (0755 by an older version) is made private when next used.
    root.chmod(0o755)
    prepare_run_home(root, shared_dir / "homes", "s-2", "run-2")
    assert mode(root) == 0o700


async def test_the_sqlite_database_and_its_wal_and_shm_are_0600(shared_dir: Path) -> None:
    database = shared_dir / "agentlog.db"
    async with open_store(f"sqlite:///{database}") as store:
        created = SessionCreated(title=SECRET_PROMPT)
        await store.append("s", [created])
        files = [database, shared_dir / "agentlog.db-wal", shared_dir / "agentlog.db-shm"]
        for path in files:
            assert path.exists(), path
            assert mode(path) == 0o600, (path, oct(mode(path)))
            assert not another_user_reads(path), path
