"""The agents one server hosts, named by `module:attribute` and loaded once, at start.

`AGENTLOG_AGENT=module:attribute` names the default agent, `AGENTLOG_AGENTS=name=module:attribute,
...` names more; with neither, the default is agentlog's built-in demo agent ("demo"). The
attribute is a `ClaudeAgentOptions`, or a callable (sync or async) taking one `AgentContext`
and returning one.

Everything that can be wrong is found at start, so a server never fails its first run over a
typo: the module is imported, the attribute looked up and its type checked; a callable must
take one argument, and is *called once* with a probe context (`AgentContext.is_probe`, no
metadata) to check that what it returns is a `ClaudeAgentOptions` agentlog can host. A
signature says nothing about the return value or about the options' fields, and those are the
mistakes that matter; the price is that the function runs once at start, so it must not do
anything it would regret for a session that does not exist.

A module-level `workspace_template` (a folder, relative to the module's own) is copied into
each new session's workspace: a `CLAUDE.md`, `.claude/skills/`, `.claude/commands/`. A
module-level `no_retry_tools` (tool names) adds the agent's own tools with side effects to
`AGENTLOG_NO_RETRY_TOOLS` (agentlog.domain.rules.crash_continuation).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions

from agentlog.domain.errors import AgentlogError, UnknownAgent
from agentlog.infra.agent.agents.context import PROBE_ID, AgentContext
from agentlog.infra.agent.sdk import team_options

DEMO = "demo"
DEFAULT = "default"
REFERENCE = re.compile(r"\A[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")
AGENT_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
TEMPLATE_ATTRIBUTE = "workspace_template"
NO_RETRY_ATTRIBUTE = "no_retry_tools"

AgentSource = ClaudeAgentOptions | Callable[[AgentContext], Any]


class AgentLoadError(ValueError):
    """An agent setting cannot be served; the message is one line naming the variable."""


class AgentOptionsFailed(AgentlogError):
    """A team's agent function failed for a run; nothing was written."""

    code = "agent_options_failed"
    http_status = 500

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"agent {name!r} could not build the run's options: {why}")
        self.details = {"agent": name}


@dataclass(frozen=True)
class AgentReference:
    """One configured agent: its name, `module:attribute`, and the variable that named it."""

    name: str
    reference: str
    variable: str


def parse_references(default: str | None, named: str | None) -> tuple[AgentReference, ...]:
    """The agents named by AGENTLOG_AGENT (a `module:attribute`, or None) and AGENTLOG_AGENTS,
    the default first. Syntax only (nothing is imported); raises ValueError naming the
    variable."""
    found: list[AgentReference] = []
    for item in (named or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, equals, reference = (part.strip() for part in item.partition("="))
        if not equals or not AGENT_NAME.match(name) or not REFERENCE.match(reference):
            raise ValueError(
                f"AGENTLOG_AGENTS: {item!r} is not name=module:attribute "
                "(e.g. support=acme.support_agent:agent)"
            )
        if any(r.name == name for r in found) or name == DEMO:
            raise ValueError(f"AGENTLOG_AGENTS: the name {name!r} is used twice or reserved")
        found.append(AgentReference(name, reference, "AGENTLOG_AGENTS"))
    if default is None:
        return tuple(found)
    if not REFERENCE.match(default):
        raise ValueError(
            f"AGENTLOG_AGENT={default!r} must be 'claude', 'scripted' or module:attribute"
        )
    # The default keeps the name AGENTLOG_AGENTS gives the same agent, so its sessions say
    # which agent they are whichever way they were started.
    same = next((r for r in found if r.reference == default), None)
    if same is not None:
        return (same, *(r for r in found if r is not same))
    if any(r.name == DEFAULT for r in found):
        raise ValueError("AGENTLOG_AGENTS: 'default' names the agent of AGENTLOG_AGENT")
    return (AgentReference(DEFAULT, default, "AGENTLOG_AGENT"), *found)


@dataclass(frozen=True)
class HostedAgent:
    """One agent this server runs: the demo (no `source`) or a team's options."""

    name: str
    reference: str | None = None
    source: AgentSource | None = None
    # The module's folder: bound read-only into the sandbox (stdio MCP servers' scripts).
    folder: Path | None = None
    template: Path | None = None
    # A hash of the template's files, part of the agent's fingerprint.
    template_digest: str | None = None
    # The module's `no_retry_tools`: not run again in a turn a crash interrupted them in.
    no_retry_tools: frozenset[str] = frozenset()

    async def options_for(self, context: AgentContext) -> ClaudeAgentOptions | None:
        """The team's options for this run (None: the demo agent, built by agentlog)."""
        if self.source is None:
            return None
        if isinstance(self.source, ClaudeAgentOptions):
            return self.source
        built = self.source(context)
        if inspect.isawaitable(built):
            built = await built
        if not isinstance(built, ClaudeAgentOptions):
            raise TypeError(f"returned {type(built).__name__}, not ClaudeAgentOptions")
        return built


@dataclass(frozen=True)
class AgentCatalog:
    """The agents of one server, by name, and which one a session gets when it names none."""

    agents: Mapping[str, HostedAgent] = field(default_factory=lambda: {DEMO: HostedAgent(DEMO)})
    default: str = DEMO

    @property
    def names(self) -> list[str]:
        return sorted(self.agents)

    def get(self, name: str | None) -> HostedAgent:
        """The agent called `name` (None: the default); raises UnknownAgent."""
        agent = self.agents.get(self.default if name is None else name)
        if agent is None:
            raise UnknownAgent(str(name), self.names)
        return agent


async def load_catalog(
    references: tuple[AgentReference, ...], disabled_tools: frozenset[str] = frozenset()
) -> AgentCatalog:
    """Import, check and probe every configured agent; raises AgentLoadError (one line,
    naming the variable) for the first that cannot be served."""
    if not references:
        return AgentCatalog()
    # Like `uvicorn module:app`: a module beside where the server starts is importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    agents: dict[str, HostedAgent] = {}
    for ref in references:
        try:
            agents[ref.name] = await _load(ref, disabled_tools)
        except AgentLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - the team's code can raise anything
            raise AgentLoadError(_line(ref, f"{type(exc).__name__}: {exc}")) from None
    return AgentCatalog(agents=agents, default=references[0].name)


async def _load(ref: AgentReference, disabled_tools: frozenset[str]) -> HostedAgent:
    agent = _imported(ref)
    probe = AgentContext(session_id=PROBE_ID, agent=ref.name, run_id=PROBE_ID, metadata={})
    try:
        options = await agent.options_for(probe)
    except Exception as exc:  # noqa: BLE001 - the team's code can raise anything
        attribute = ref.reference.partition(":")[2]
        why = str(exc) if isinstance(exc, TypeError) and "returned" in str(exc) else None
        raise AgentLoadError(
            _line(ref, why or f"{attribute}(context) raised {type(exc).__name__}: {exc}")
        ) from None
    assert options is not None
    problems = team_options.refusals(options, disabled_tools)
    if problems:
        raise AgentLoadError(_line(ref, problems[0]))
    return agent


def _imported(ref: AgentReference) -> HostedAgent:
    """The agent's module imported and its attribute checked (not yet called)."""
    module_name, _, attribute = ref.reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an import can raise anything
        raise AgentLoadError(
            _line(ref, f"cannot import {module_name}: {type(exc).__name__}: {exc}")
        ) from None
    source: Any = module
    for part in attribute.split("."):
        if not hasattr(source, part):
            raise AgentLoadError(_line(ref, f"module {module_name} has no attribute {attribute}"))
        source = getattr(source, part)
    if not isinstance(source, ClaudeAgentOptions):
        if not callable(source):
            raise AgentLoadError(
                _line(
                    ref,
                    f"{attribute} is a {type(source).__name__}, not a ClaudeAgentOptions or a "
                    "function returning one",
                )
            )
        try:
            inspect.signature(source).bind(None)
        except TypeError:
            raise AgentLoadError(
                _line(ref, f"{attribute} must take one argument (the run's AgentContext)")
            ) from None
        except ValueError:
            pass  # no signature to read (a builtin): the probe below tells
    module_file = getattr(module, "__file__", None)
    folder = Path(os.path.dirname(os.path.realpath(module_file))) if module_file else None
    template, digest = _template(ref, module, folder)
    return HostedAgent(
        name=ref.name,
        reference=ref.reference,
        source=source,
        folder=folder,
        template=template,
        template_digest=digest,
        no_retry_tools=_no_retry_tools(ref, module),
    )


def _no_retry_tools(ref: AgentReference, module: Any) -> frozenset[str]:
    given = getattr(module, NO_RETRY_ATTRIBUTE, None)
    if given is None:
        return frozenset()
    if isinstance(given, str) or not all(isinstance(t, str) and t for t in given):
        raise AgentLoadError(_line(ref, f"{NO_RETRY_ATTRIBUTE} must be a list of tool names"))
    return frozenset(given)


def _template(
    ref: AgentReference, module: Any, folder: Path | None
) -> tuple[Path | None, str | None]:
    given = getattr(module, TEMPLATE_ATTRIBUTE, None)
    if given is None:
        return None, None
    if not isinstance(given, str | os.PathLike):
        raise AgentLoadError(_line(ref, f"{TEMPLATE_ATTRIBUTE} must be a path to a folder"))
    path = Path(given)
    if not path.is_absolute() and folder is not None:
        path = folder / path
    if not path.is_dir():
        raise AgentLoadError(_line(ref, f"{TEMPLATE_ATTRIBUTE} {path} is not a folder"))
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes() + b"\0")
    return path.resolve(), digest.hexdigest()[:16]


def _line(ref: AgentReference, why: str) -> str:
    """One line: the variable, the agent and why (a team's message may span lines)."""
    setting = (
        f"{ref.variable}={ref.reference}"
        if ref.variable == "AGENTLOG_AGENT"
        else f"{ref.variable}: {ref.name}={ref.reference}"
    )
    return " ".join(f"{setting}: {why}".split())


def load_catalog_sync(
    references: tuple[AgentReference, ...], disabled_tools: frozenset[str] = frozenset()
) -> AgentCatalog:
    """`load_catalog` outside any event loop (`agentlog serve`, before the server starts)."""
    import asyncio

    return asyncio.run(load_catalog(references, disabled_tools))


__all__ = [
    "DEFAULT",
    "DEMO",
    "AgentCatalog",
    "AgentLoadError",
    "AgentOptionsFailed",
    "AgentReference",
    "HostedAgent",
    "load_catalog",
    "parse_references",
]
