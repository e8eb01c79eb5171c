"""Files and directories only the server's own user may open (issue 22: another local user read
a prompt from the SQLite WAL). Modes are set when a path is made, and narrowed when an older
version left it wider; a path owned by another user is left alone (it is not ours to change)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


def private_directory(path: Path) -> Path:
    """Make `path` (and missing parents, left at their default modes) a 0700 directory."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    _narrow(path, PRIVATE_DIRECTORY)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with 0600 if missing, else narrow it to 0600."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    except FileExistsError:
        _narrow(path, PRIVATE_FILE)
    return path


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to a file that is 0600 from the moment it exists."""
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def _narrow(path: Path, mode: int) -> None:
    info = path.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & ~mode:
        path.chmod(mode)
