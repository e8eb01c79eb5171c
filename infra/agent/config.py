"""The agent runner's configuration, from AGENTLOG_* variables (see `AgentConfig.from_env`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentlog.infra.agent.agents.catalog import AgentReference, parse_references
from agentlog.infra.agent.run.jobs import PollPolicy
from agentlog.infra.agent.run.policy import (
    DEFAULT_APPROVAL_RULES,
    ApprovalPolicy,
    ToolPolicy,
    parse_deny_rules,
)
from agentlog.infra.agent.sandbox.egress_proxy import parse_hosts
from agentlog.infra.agent.sandbox.limits import RunLimits

Mode = Literal["scripted", "claude"]

# What the agent may use without asking: reading its workspace and the demo MCP tools.
DEFAULT_ALLOWED_TOOLS = (
    "Read",
    "Glob",
    "Grep",
    "mcp__demo__add",
    "mcp__demo__slow_op",
    "mcp__demo__publish",
)
# Tools that run commands, write files or reach the network: off unless the operator names
# them in AGENTLOG_ENABLE_TOOLS. Each brings its companions (Bash's background shells).
# Off means removed from the agent (`disallowed_tools`) and denied by the PreToolUse hook too.
ENABLEABLE_TOOLS: dict[str, tuple[str, ...]] = {
    "Bash": ("Bash", "BashOutput", "KillShell", "KillBash"),
    "Write": ("Write",),
    "Edit": ("Edit", "MultiEdit"),
    "NotebookEdit": ("NotebookEdit",),
    "WebFetch": ("WebFetch",),
    "WebSearch": ("WebSearch",),
}
# The AutoGPT copilot's rule: a background sub-agent's result would never reach the turn.
DEFAULT_DENY_RULES = "Agent.run_in_background"


@dataclass(frozen=True)
class AgentConfig:
    """How runs are driven. `from_env` reads it from AGENTLOG_* variables."""

    mode: Mode = "scripted"
    heartbeat_seconds: float = 15.0
    # A dead owner's session frees one TTL after its last refresh: short, so a crash is
    # noticed in seconds; the lease is refreshed on its own cycle, not by heartbeats.
    lock_ttl_seconds: float = 8.0
    # How often a run refreshes its lease (default: four times per TTL).
    lease_refresh: float | None = None
    # How often the sweeper looks for runs whose owner died (also on an idle server).
    sweep_seconds: float = 2.0
    policy: ToolPolicy = field(default_factory=lambda: ToolPolicy.from_config(DEFAULT_DENY_RULES))
    allowed_tools: tuple[str, ...] = DEFAULT_ALLOWED_TOOLS
    approval: ApprovalPolicy = field(
        default_factory=lambda: ApprovalPolicy.from_config(DEFAULT_APPROVAL_RULES)
    )
    # How long a call that needs approval waits in-process for the answer before the turn
    # stops (`defer`) and the session waits in the log alone, holding no process or lock.
    approval_grace_seconds: float = 3.0
    include_partial_messages: bool = True
    model: str | None = None
    # Per-session agent working directories live here; per-run HOMEs in `run_home_root`.
    workspace_root: Path | None = None
    run_home_root: Path | None = None
    # How long `cancel` waits for the interrupted turn to end before tearing it down.
    cancel_grace_seconds: float = 10.0
    # How often the owner of a run looks for a cancel asked by another process.
    cancel_poll_seconds: float = 1.0
    # How long a start waits for a run that already ended to release the session.
    handover_seconds: float = 5.0
    poll: PollPolicy = field(default_factory=lambda: PollPolicy(interval_seconds=0.25))
    extra_env: Mapping[str, str] = field(default_factory=dict)
    cli_path: str | None = None
    # Tools of ENABLEABLE_TOOLS the operator turned on (AGENTLOG_ENABLE_TOOLS); the seam where
    # tool approval gates them.
    enabled_tools: frozenset[str] = frozenset()
    # Confine every run with bubblewrap (infra/agent/sandbox/bubblewrap.py); off only when the
    # operator
    # says AGENTLOG_SANDBOX=off.
    sandbox: bool = True
    # What each run's tools may use (AGENTLOG_RUN_MEMORY_MB, ..._PROCESSES, ..._CPU_SECONDS,
    # ..._FILE_MB), set by the sandbox's tool shell.
    run_limits: RunLimits = field(default_factory=RunLimits)
    # The command the scripted model's shell scenario runs (never text from a caller).
    scripted_shell_command: str | None = None
    # Hosts (`host` or `host:port`) the agent's tools may reach, through the run's egress proxy
    # (AGENTLOG_AGENT_EGRESS; infra/agent/sandbox/egress_proxy.py); none: no network at all.
    egress: tuple[str, ...] = ()
    # The team agents this server hosts (AGENTLOG_AGENT=module:attribute, AGENTLOG_AGENTS),
    # the default first; none: the built-in demo agent. Loaded at start (agents/catalog.py).
    agents: tuple[AgentReference, ...] = ()
    # A turn whose server died mid-turn goes on in a new run on another (or the restarted)
    # instance, at most `max_continuations` times in a row; else it ends `run_abandoned`
    # (AGENTLOG_CONTINUE_AFTER_CRASH, AGENTLOG_MAX_CONTINUATIONS;
    # agentlog.domain.rules.crash_continuation).
    continue_after_crash: bool = True
    max_continuations: int = 2
    # Tools with side effects that must not run again in a turn after a crash interrupted
    # them (AGENTLOG_NO_RETRY_TOOLS): the model is told they may or may not have run.
    no_retry_tools: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(self.enabled_tools - ENABLEABLE_TOOLS.keys())
        if unknown:
            raise ValueError(
                f"AGENTLOG_ENABLE_TOOLS: {unknown[0]!r} is not one of {', '.join(ENABLEABLE_TOOLS)}"
            )
        gated = sorted(set(self.allowed_tools) & self.disabled_tools)
        if gated:
            raise ValueError(
                f"AGENTLOG_ALLOWED_TOOLS names {gated[0]}, which runs commands, writes files or "
                f"reaches the network: enable it with AGENTLOG_ENABLE_TOOLS={gated[0]}"
            )
        if self.max_continuations < 0:
            raise ValueError("AGENTLOG_MAX_CONTINUATIONS must not be negative")
        if self.mode not in ("scripted", "claude"):
            raise ValueError(f"agent mode must be 'scripted' or 'claude', not {self.mode!r}")
        if not self.heartbeat_seconds > 0:
            raise ValueError("heartbeat_seconds must be positive")
        if not self.lock_ttl_seconds > 0:
            raise ValueError("the run lock TTL must be positive")
        if self.lock_ttl_seconds < 2 * self.lease_refresh_seconds:
            # A TTL under two refreshes expires on one late refresh.
            raise ValueError(
                f"the run lock TTL ({self.lock_ttl_seconds:g} s) must be at least twice the "
                f"lease refresh interval ({self.lease_refresh_seconds:g} s)"
            )

    @property
    def disabled_tools(self) -> frozenset[str]:
        """Every tool of ENABLEABLE_TOOLS the operator did not enable."""
        return frozenset(
            tool
            for name, tools in ENABLEABLE_TOOLS.items()
            if name not in self.enabled_tools
            for tool in tools
        )

    @property
    def agent_tools(self) -> tuple[str, ...]:
        """The tools the agent may use without asking: the allowed ones and the enabled ones."""
        enabled = [t for name in sorted(self.enabled_tools) for t in ENABLEABLE_TOOLS[name]]
        return tuple(dict.fromkeys([*self.allowed_tools, *enabled]))

    def not_enabled(self, tool_name: str) -> str | None:
        """The PreToolUse denial for a tool that is off on this server, or None."""
        if tool_name in self.disabled_tools:
            return (
                f"{tool_name} is not enabled on this server "
                "(the operator enables it with AGENTLOG_ENABLE_TOOLS)."
            )
        return None

    @property
    def lease_refresh_seconds(self) -> float:
        if self.lease_refresh is not None:
            return self.lease_refresh
        return self.lock_ttl_seconds / 4

    @property
    def lock_ttl_ms(self) -> int:
        return max(1, round(self.lock_ttl_seconds * 1000))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AgentConfig:
        """AGENTLOG_AGENT (claude | scripted | module:attribute; the model is the real one
        when ANTHROPIC_API_KEY is set, else the scripted one, unless claude or scripted says),
        AGENTLOG_AGENTS (name=module:attribute,...),
        AGENTLOG_HEARTBEAT_SECONDS, AGENTLOG_RUN_LOCK_TTL_SECONDS (default 8; refreshed every
        quarter TTL), AGENTLOG_DENY_TOOLS, AGENTLOG_ALLOWED_TOOLS, AGENTLOG_AGENT_MODEL,
        AGENTLOG_WORKSPACE_DIR, AGENTLOG_CONTINUE_AFTER_CRASH, AGENTLOG_MAX_CONTINUATIONS,
        AGENTLOG_NO_RETRY_TOOLS. Raises ValueError naming the variable."""
        chosen = environ.get("AGENTLOG_AGENT") or ""
        # A value with a colon names the default agent's module; the model mode then follows
        # the key, as with no AGENTLOG_AGENT at all.
        default_agent = chosen if ":" in chosen else None
        mode = (chosen if default_agent is None else "") or (
            "claude" if environ.get("ANTHROPIC_API_KEY") else "scripted"
        )
        agents = parse_references(default_agent, environ.get("AGENTLOG_AGENTS"))
        if mode not in ("scripted", "claude"):
            raise ValueError(
                f"AGENTLOG_AGENT={mode!r} must be 'claude', 'scripted' or module:attribute"
            )
        if mode == "claude" and not environ.get("ANTHROPIC_API_KEY"):
            raise ValueError("AGENTLOG_AGENT=claude needs ANTHROPIC_API_KEY")

        def number(name: str, default: float) -> float:
            raw = environ.get(name)
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number of seconds") from None

        heartbeat = number("AGENTLOG_HEARTBEAT_SECONDS", 15.0)
        ttl = number("AGENTLOG_RUN_LOCK_TTL_SECONDS", 8.0)
        deny = environ.get("AGENTLOG_DENY_TOOLS")
        try:
            policy = ToolPolicy(parse_deny_rules(DEFAULT_DENY_RULES if deny is None else deny))
        except ValueError as exc:
            raise ValueError(f"AGENTLOG_DENY_TOOLS: {exc}") from None
        approve = environ.get("AGENTLOG_APPROVE_TOOLS")
        try:
            approval = ApprovalPolicy(
                parse_deny_rules(DEFAULT_APPROVAL_RULES if approve is None else approve)
            )
        except ValueError as exc:
            raise ValueError(f"AGENTLOG_APPROVE_TOOLS: {exc}") from None
        grace = number("AGENTLOG_APPROVAL_GRACE_SECONDS", 3.0)
        if grace < 0:
            raise ValueError("AGENTLOG_APPROVAL_GRACE_SECONDS must not be negative")
        allowed = environ.get("AGENTLOG_ALLOWED_TOOLS")
        tools = (
            tuple(t.strip() for t in allowed.replace(";", ",").split(",") if t.strip())
            if allowed is not None
            else DEFAULT_ALLOWED_TOOLS
        )
        workspace = environ.get("AGENTLOG_WORKSPACE_DIR")
        enabled = frozenset(
            t.strip()
            for t in (environ.get("AGENTLOG_ENABLE_TOOLS") or "").replace(";", ",").split(",")
            if t.strip()
        )
        try:
            egress = parse_hosts(environ.get("AGENTLOG_AGENT_EGRESS"))
        except ValueError as exc:
            raise ValueError(f"AGENTLOG_AGENT_EGRESS: {exc}") from None
        crash = (environ.get("AGENTLOG_CONTINUE_AFTER_CRASH") or "on").strip().lower()
        if crash not in ("on", "off"):
            raise ValueError(f"AGENTLOG_CONTINUE_AFTER_CRASH={crash!r} must be 'on' or 'off'")
        raw_max = (environ.get("AGENTLOG_MAX_CONTINUATIONS") or "2").strip()
        if not raw_max.isdigit():
            raise ValueError(
                f"AGENTLOG_MAX_CONTINUATIONS={raw_max!r} must be a whole number, 0 or more"
            )
        no_retry = frozenset(
            t.strip()
            for t in (environ.get("AGENTLOG_NO_RETRY_TOOLS") or "").replace(";", ",").split(",")
            if t.strip()
        )
        sandbox = (environ.get("AGENTLOG_SANDBOX") or "on").strip().lower()
        if sandbox not in ("on", "off"):
            raise ValueError(f"AGENTLOG_SANDBOX={sandbox!r} must be 'on' or 'off'")
        try:
            return cls(
                mode=mode,  # type: ignore[arg-type]
                heartbeat_seconds=heartbeat,
                lock_ttl_seconds=ttl,
                policy=policy,
                approval=approval,
                approval_grace_seconds=grace,
                allowed_tools=tools,
                model=environ.get("AGENTLOG_AGENT_MODEL") or None,
                workspace_root=Path(workspace) if workspace else None,
                enabled_tools=enabled,
                sandbox=sandbox == "on",
                run_limits=RunLimits.from_env(environ),
                agents=agents,
                egress=egress,
                continue_after_crash=crash == "on",
                max_continuations=int(raw_max),
                no_retry_tools=no_retry,
            )
        except ValueError as exc:
            if str(exc).startswith("AGENTLOG_"):
                raise
            raise ValueError(
                f"AGENTLOG_HEARTBEAT_SECONDS / AGENTLOG_RUN_LOCK_TTL_SECONDS: {exc}"
            ) from None
