"""What a team's agent function is told about the run it builds options for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The ids of the context a callable agent is called with once at start, to check what it
# returns (see catalog.py): a function must cope with a session that has no metadata.
PROBE_ID = "agentlog-probe"


@dataclass(frozen=True)
class AgentContext:
    """One run of one session: the argument of a team's `agent(context)` function."""

    session_id: str
    agent: str  # the agent's name on this server (AGENTLOG_AGENTS), or "default"
    run_id: str
    # The session's `metadata`, as given to POST /v1/sessions (read-only).
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_probe(self) -> bool:
        """True for the call agentlog makes once at start to check the function's result."""
        return self.run_id == PROBE_ID
