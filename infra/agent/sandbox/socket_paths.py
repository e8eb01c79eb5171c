"""Unix socket paths of any length.

`bind()` takes at most 107 bytes of path (`sun_path`), and the sandbox's sockets live in a
folder of `$TMPDIR`, which can be deep (a CI runner's per-test folder, a container's long
mount point): a run then failed with `OSError: AF_UNIX path too long`. A long path is bound
through `/proc/self/fd/N/<name>`, N an open descriptor of its folder: the kernel resolves
the link, the socket appears at its real path, and everything after the bind (chmod,
bubblewrap's bind mount, unlink) uses that real path, which has no such limit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

# sizeof(sun_path) is 108 on Linux, one byte of it the terminating NUL.
MAX_SOCKET_PATH = 107


@contextlib.contextmanager
def bindable(path: Path) -> Iterator[str]:
    """A name `bind()` accepts for `path`, valid inside the `with` block."""
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)
