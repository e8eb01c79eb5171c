"""What one run's tools may use: memory, processes, CPU time, bytes per file and in the
workspace (configurable)."""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass

MIB = 1024 * 1024
# The settings, their fields and defaults a laptop survives a runaway tool with.
SETTINGS: dict[str, tuple[str, int | None]] = {
    "AGENTLOG_RUN_MEMORY_MB": ("memory_mb", 2048),
    "AGENTLOG_RUN_PROCESSES": ("processes", 256),
    "AGENTLOG_RUN_CPU_SECONDS": ("cpu_seconds", 600),
    "AGENTLOG_RUN_FILE_MB": ("file_mb", 1024),
    # Metered by the run's tool gate (workspace_meter.py), as any user.
    "AGENTLOG_RUN_WORKSPACE_MB": ("workspace_mb", 2048),
}


@dataclass(frozen=True)
class RunLimits:
    """Per process of a tool, set by the tool shell before the command runs (setrlimit): so a
    tool that hits one fails (its call records the error) and the server and the CLI go on."""

    memory_mb: int = 2048
    processes: int = 256
    cpu_seconds: int = 600
    file_mb: int = 1024
    # All a session's workspace may hold (workspace_meter.py), and the sandbox's /tmp.
    workspace_mb: int | None = 2048

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RunLimits:
        values: dict[str, int] = {}
        for name, (field_name, _) in SETTINGS.items():
            raw = (environ.get(name) or "").strip()
            if not raw:
                continue
            if not raw.isdigit() or int(raw) < 1:
                raise ValueError(f"{name}={raw!r} must be a whole number of at least 1")
            values[field_name] = int(raw)
        return cls(**values)

    def rlimits(self) -> dict[int, int]:
        """setrlimit's resources and values. Memory is RLIMIT_DATA (what a process allocates)
        rather than RLIMIT_AS, which runtimes that reserve address space (V8, the JVM) hit
        without using it. Processes are counted per uid in the sandbox's user namespace."""
        return {
            resource.RLIMIT_DATA: self.memory_mb * MIB,
            resource.RLIMIT_NPROC: self.processes,
            resource.RLIMIT_CPU: self.cpu_seconds,
            resource.RLIMIT_FSIZE: self.file_mb * MIB,
        }
