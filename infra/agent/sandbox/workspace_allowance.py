"""What the CLI's own file tools (Write, Edit, MultiEdit, NotebookEdit) may still add to a
session's workspace under its limit (AGENTLOG_RUN_WORKSPACE_MB).

The tool gate (tool_gate.py) bounds Bash commands, which run through the tool shell; the file
tools are written by the CLI process itself, so nothing there sees them. The run's PreToolUse
hook asks here first (hooks.py) and denies a call when the workspace is at its limit or when
what the call adds would take it past: nothing is written.

What a call adds is estimated from its input, before it runs: Write's `content`, what Edit's
`new_string` adds over its `old_string` (times the occurrences a `replace_all` can meet),
NotebookEdit's `new_source` as JSON; rounded up to whole blocks, as the meter counts. The
workspace is measured by workspace_meter.py, which walks every file (0.7 s at 100,000 files,
bench/tool_gate.py): so a measurement is reused for a while (at least a second, and five
times what it took: the hook spends at most a fifth of the time measuring), and what the
calls let through since are added to it, so a burst of Writes between two measurements is
still bounded. The gate's own figure is taken when it is newer.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agentlog.infra.agent.sandbox import workspace_meter

MIB = 1024 * 1024
BLOCK = 4096
# A measurement stays good this long (seconds), or five times what it took, if longer.
FRESH_SECONDS = 1.0
FRESH_FACTOR = 5
# What a notebook cell adds around its source (its JSON fields and indentation).
CELL_OVERHEAD = 256
FILE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})


def added_bytes(
    tool_name: str, tool_input: Mapping[str, Any] | None, size_of: Callable[[str], int | None]
) -> int | None:
    """What a file tool's call adds to the disk, at most (an estimate from its input), or
    None for a tool that is not one. `size_of(path)`: a file's size, None when unknown."""
    if tool_name not in FILE_TOOLS:
        return None
    given = tool_input or {}
    added = 0
    if tool_name == "Write":
        added = _utf8(given.get("content"))
    elif tool_name == "Edit":
        added = _edit_growth(given, given.get("file_path"), size_of)
    elif tool_name == "MultiEdit":
        edits = given.get("edits")
        for edit in edits if isinstance(edits, list) else []:
            if isinstance(edit, Mapping):
                added += _edit_growth(edit, given.get("file_path"), size_of)
    elif given.get("edit_mode") != "delete":  # NotebookEdit: replace or insert a cell
        source = given.get("new_source")
        lines = source.splitlines(keepends=True) if isinstance(source, str) else []
        added = len(json.dumps(lines, indent=1).encode()) + CELL_OVERHEAD
    return math.ceil(added / BLOCK) * BLOCK


def _utf8(value: Any) -> int:
    return len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else 0


def _edit_growth(edit: Mapping[str, Any], path: Any, size_of: Callable[[str], int | None]) -> int:
    grows = _utf8(edit.get("new_string")) - _utf8(edit.get("old_string"))
    if grows <= 0:
        return 0
    if not edit.get("replace_all"):
        return grows
    # Each occurrence takes at least the old string's length in the file as it is.
    size = size_of(path) if isinstance(path, str) else None
    if size is None:
        return grows
    return grows * max(1, size // max(1, _utf8(edit.get("old_string"))))


def workspace_refusal(tool_name: str, used: int, adds: int, limit: int) -> str | None:
    """Why a file tool's call that `adds` bytes to a workspace holding `used` must not run,
    or None: the reason the model sees."""
    mb = limit // MIB
    if used >= limit:
        return (
            f"{tool_name} was not run: the workspace is at its limit of {mb} MB "
            "(AGENTLOG_RUN_WORKSPACE_MB). Remove files to make room."
        )
    if used + adds > limit:
        return (
            f"{tool_name} was not run: the workspace is at its limit of {mb} MB "
            f"(AGENTLOG_RUN_WORKSPACE_MB): it holds {used / MIB:.1f} MB and this call would "
            f"add {adds / MIB:.1f} MB."
        )
    return None


class WorkspaceAllowance:
    """One run's check of its file tools against the workspace's limit. Unarmed (it refuses
    nothing) until the run's sandbox arms it with the workspace and its limit: without the
    sandbox the workspace has no limit. Thread-safe: calls may be checked at once."""

    def __init__(self) -> None:
        self.workspace: Path | None = None
        self.limit: int | None = None
        self._last_figure: Callable[[], tuple[float, int] | None] = lambda: None
        self._lock = threading.Lock()
        self._measured_at = -math.inf
        self._fresh_for = FRESH_SECONDS
        self._measured = 0
        # The calls let through (when, bytes): each counts until a measurement that started
        # after it.
        self._let_through: list[tuple[float, int]] = []

    def arm(
        self,
        workspace: Path,
        limit: int,
        last_figure: Callable[[], tuple[float, int] | None] | None = None,
    ) -> None:
        """`last_figure`: the tool gate's latest measurement (monotonic time, bytes)."""
        self.workspace = workspace
        self.limit = limit
        if last_figure is not None:
            self._last_figure = last_figure

    def refusal(self, tool_name: str, tool_input: Mapping[str, Any] | None) -> str | None:
        """Why this call must not run, or None; a call let through counts as written until
        the next measurement. File I/O: call it from a thread."""
        if self.workspace is None or self.limit is None:
            return None
        adds = added_bytes(tool_name, tool_input, self._size_in_workspace)
        if adds is None:
            return None
        with self._lock:
            used = self._used_now()
            why = workspace_refusal(tool_name, used, adds, self.limit)
            if why is None:
                self._let_through.append((time.monotonic(), adds))
            return why

    def _used_now(self) -> int:
        assert self.workspace is not None
        now = time.monotonic()
        gate = self._last_figure()
        if gate is not None and gate[0] > self._measured_at:
            self._measured_at, self._measured = gate  # the gate measured since: newer
        if now - self._measured_at > self._fresh_for:
            self._measured = workspace_meter.workspace_bytes(self.workspace)
            took = time.monotonic() - now
            self._measured_at = now
            self._fresh_for = max(FRESH_SECONDS, took * FRESH_FACTOR)
        # A call let through before the measurement started is in it (the CLI writes as soon
        # as the hook answers), or was never written.
        self._let_through = [(at, n) for at, n in self._let_through if at >= self._measured_at]
        return self._measured + sum(n for _, n in self._let_through)

    def _size_in_workspace(self, path: str) -> int | None:
        """The size of a regular file at `path` in the workspace (bound at its own path in
        the sandbox), else None: no path outside it is looked at for a tool, and a link is
        not followed."""
        assert self.workspace is not None
        normal = os.path.normpath(path)
        if not normal.startswith(os.fspath(self.workspace) + os.sep):
            return None
        try:
            info = os.lstat(normal)
        except OSError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None


def arm_file_tools(
    hooks: Mapping[Any, Any] | None,
    workspace: Path,
    limit: int,
    last_figure: Callable[[], tuple[float, int] | None] | None = None,
) -> bool:
    """Arm the allowance that a run's PreToolUse hook carries (its `workspace_allowance`,
    hooks.py): the hooks are made before the sandbox knows the workspace's limit. True if
    one was found."""
    armed = False
    for matcher in (hooks or {}).get("PreToolUse") or []:
        for callback in getattr(matcher, "hooks", None) or []:
            allowance = getattr(callback, "workspace_allowance", None)
            if isinstance(allowance, WorkspaceAllowance):
                allowance.arm(workspace, limit, last_figure)
                armed = True
    return armed
