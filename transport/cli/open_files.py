"""Enough open files for the streams a serving process may hold: each SSE stream is a socket.

Many systems start a process with a soft limit of 1,024 open files (the hard limit is usually
far higher). A process at its soft limit cannot accept another connection, and not only for
streams: a POST or a health check is refused too, with nothing but an accept error in the log.
So `serve` raises its own soft limit to fit AGENTLOG_MAX_SSE_CONNECTIONS streams and a reserve
for everything else (the database pool, runs' CLI pipes, plain requests), which any process may
do up to its hard limit; where the hard limit cannot fit them, the stream limit is lowered to
what fits, and said, so a client beyond it gets the precise 503, never a refused connection.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

# Open files kept for everything but streams: the database pool and its LISTEN connection,
# Redis, the SQLite files, each active run's CLI pipes and workspace files, plain requests.
OTHER_FILES = 1024


@dataclass(frozen=True)
class FileBudget:
    """The soft limit to set and the streams that fit under it."""

    soft_limit: int
    max_streams: int
    warning: str | None = None


def budget_for(max_streams: int, soft: int, hard: int) -> FileBudget:
    """The soft open-files limit for `max_streams` streams, given the current limits."""
    wanted = max_streams + OTHER_FILES
    if soft == resource.RLIM_INFINITY or wanted <= soft:
        return FileBudget(soft_limit=soft, max_streams=max_streams)
    if hard == resource.RLIM_INFINITY or wanted <= hard:
        return FileBudget(soft_limit=wanted, max_streams=max_streams)
    fits = max(1, hard - OTHER_FILES)
    return FileBudget(
        soft_limit=hard,
        max_streams=fits,
        warning=(
            f"AGENTLOG_MAX_SSE_CONNECTIONS={max_streams} needs {wanted} open files, but this "
            f"process may open at most {hard} (ulimit -Hn): serving at most {fits} streams. "
            f"Raise the hard limit (LimitNOFILE= in a systemd unit, ulimit -n) to serve more"
        ),
    )


def fit_open_files(max_streams: int) -> FileBudget:
    """Raise this process's soft open-files limit for `max_streams` streams (see the module)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = budget_for(max_streams, soft, hard)
    if budget.soft_limit != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (budget.soft_limit, hard))
    return budget
