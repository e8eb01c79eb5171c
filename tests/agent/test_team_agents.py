"""A team's own agent (`examples/support_agent`), hosted by the runner: the real SDK and CLI,
the scripted model, the sandbox on, on SQLite and PostgreSQL.

What a team wrote must reach the model (its system prompt, its workspace template) and run
(its in-process tools in this process, its stdio MCP server inside the sandbox), recorded like
agentlog's own; its hooks and `can_use_tool` still decide, and the operator's policy applies on
top of them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AgentDefinition,
    ClaudeAgentOptions,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    create_sdk_mcp_server,
    tool,
)

from agentlog.domain.errors import UnknownAgent
from agentlog.domain.events import (
    RunFinished,
    RunStarted,
    SessionCreated,
    TextCompleted,
    ToolApprovalRequested,
    ToolCallDenied,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.agents.catalog import (
    AgentCatalog,
    AgentOptionsFailed,
    HostedAgent,
    load_catalog,
    parse_references,
)
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.policy import ApprovalPolicy, ToolPolicy
from agentlog.infra.agent.run.runner import AgentRunner
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from examples.support_agent import agent as support

from .test_runner import only, run_turn, runner_on

pytestmark = pytest.mark.slow

AGENTS = "support=examples.support_agent.agent:agent,billing=examples.support_agent.agent:billing"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return str(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    )


@pytest.fixture
async def store(url: str) -> AsyncIterator[StoreBase]:
    async with open_store(url) as opened:
        yield opened


@pytest.fixture
async def catalog() -> AgentCatalog:
    return await load_catalog(parse_references(None, AGENTS))


async def support_session(store: StoreBase, session_id: str = "s-acme") -> str:
    created = SessionCreated(agent="support", metadata={"customer": "Ada Lovelace"})
    await store.append(session_id, [created])
    return session_id


def texts(events: Any) -> str:
    return "\n".join(t.text for t in only(events, TextCompleted))


async def test_the_system_prompt_and_the_workspace_template_reach_the_model(
    store: StoreBase, scripted_model: ScriptedModel, catalog: AgentCatalog, tmp_path: Path
) -> None:
    async with runner_on(store, scripted_model, tmp_path, agents=catalog) as runner:
        session = await support_session(store)
        events = await run_turn(runner, store, session, "[scenario:system-prompt]")
    said = texts(events)
    assert "You are Acme's support agent. Customer: Ada Lovelace." in said
    [started] = only(events, RunStarted)
    assert started.agent_name == "support"
    assert started.agent_fingerprint is not None and started.agent_fingerprint.startswith("sha256:")
    assert not only(events, RunFinished)[0].is_error
    # The template is the new workspace, and the CLI read its CLAUDE.md ("project" settings).
    [workspace] = [p for p in (tmp_path / "workspaces").iterdir() if p.name.startswith(session)]
    rules = (Path(support.__file__).parent / "workspace" / "CLAUDE.md").read_text()
    assert (workspace / "CLAUDE.md").read_text() == rules
    assert any("Acme support: house rules" in json.dumps(r) for r in scripted_model.requests)


async def test_the_in_process_and_the_stdio_mcp_tool_are_called_and_recorded(
    store: StoreBase, scripted_model: ScriptedModel, catalog: AgentCatalog, tmp_path: Path
) -> None:
    async with runner_on(store, scripted_model, tmp_path, agents=catalog) as runner:
        session = await support_session(store)
        lookup = await run_turn(
            runner, store, session, '[call:mcp__acme__lookup_order {"order_id": "A-1001"}]'
        )
        track = await run_turn(
            runner, store, session, '[call:mcp__shipping__track_parcel {"parcel": "P-77"}]'
        )
    [call] = only(lookup, ToolCallStarted)
    assert (call.tool_name, call.input) == ("mcp__acme__lookup_order", {"order_id": "A-1001"})
    [done] = only(lookup, ToolCallSucceeded)
    assert done.output == "order A-1001: kettle, $49.00, shipped, parcel P-77"
    assert "returned: order A-1001: kettle" in texts(lookup)
    # The stdio server ran inside the sandbox, with agentlog's Python and the agent's folder.
    [call] = only(track, ToolCallStarted)
    assert (call.tool_name, call.input) == ("mcp__shipping__track_parcel", {"parcel": "P-77"})
    [done] = only(track, ToolCallSucceeded)
    assert done.output == "parcel P-77: in transit, due Tuesday"


async def test_the_teams_hook_denies_and_the_operators_approval_rule_asks(
    store: StoreBase, scripted_model: ScriptedModel, catalog: AgentCatalog, tmp_path: Path
) -> None:
    refunds_before = list(support.REFUNDS)
    async with runner_on(
        store,
        scripted_model,
        tmp_path,
        agents=catalog,
        approval=ApprovalPolicy.from_config("mcp__acme__refund_order"),
        approval_grace_seconds=0.2,
    ) as runner:
        session = await support_session(store)
        large = await run_turn(
            runner,
            store,
            session,
            '[call:mcp__acme__refund_order {"order_id": "A-1002", "amount": 349}]',
        )
        small = await run_turn(
            runner,
            store,
            session,
            '[call:mcp__acme__refund_order {"order_id": "A-1001", "amount": 20}]',
        )
    # Over the team's limit: its own hook says no, recorded like agentlog's, nobody is asked.
    [denied] = only(large, ToolCallDenied)
    assert denied.reason.startswith("Refunds over $100 go to a human")
    assert not only(large, ToolApprovalRequested)
    assert "mcp__acme__refund_order failed" in texts(large)
    # Under it: the operator's approval rule asks a person; the turn waits for the answer.
    [asked] = only(small, ToolApprovalRequested)
    assert (asked.tool_name, asked.input) == (
        "mcp__acme__refund_order",
        {"order_id": "A-1001", "amount": 20},
    )
    assert refunds_before == support.REFUNDS


async def test_the_operators_deny_rule_comes_before_the_teams_hooks(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    asked: list[str] = []

    async def watching(data: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
        asked.append(data["tool_name"])
        return {}

    hooks = {"PreToolUse": [HookMatcher(hooks=[watching])]}
    team = ClaudeAgentOptions(allowed_tools=["Read", "Glob"], hooks=hooks)  # type: ignore[dict-item]
    agents = AgentCatalog({"team": HostedAgent("team", source=team)}, default="team")
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, agents=agents, policy=ToolPolicy.from_config("Glob")
    ) as runner:
        await sqlite_store.append("s-1", [SessionCreated()])
        events = await run_turn(runner, sqlite_store, "s-1", '[call:Glob {"pattern": "*"}]')
        read = await run_turn(runner, sqlite_store, "s-1", '[call:Read {"file_path": "/etc/x"}]')
    [denied] = only(events, ToolCallDenied)
    assert denied.reason == "Glob is disabled by policy in this session."
    assert asked == ["Read"]  # the denied call never reached the team's code; the other did
    assert only(read, RunStarted)[0].agent_name == "team"


async def test_a_team_hook_that_asks_and_a_can_use_tool_that_denies(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async def ask_for_glob(data: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "ask",
                "permissionDecisionReason": "Globbing needs a person's yes.",
            }
        }

    @tool("poke", "Poke something", {"what": str})
    async def poke(args: dict[str, Any]) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "poked"}]}

    async def no_poking(
        name: str, tool_input: dict[str, Any], context: Any
    ) -> PermissionResultAllow | PermissionResultDeny:
        if name == "mcp__team__poke":
            return PermissionResultDeny(message="The team never pokes.")
        return PermissionResultAllow()

    team = ClaudeAgentOptions(
        mcp_servers={"team": create_sdk_mcp_server("team", tools=[poke])},
        allowed_tools=["Read", "Glob"],  # poke is not: the CLI asks can_use_tool for it
        hooks={"PreToolUse": [HookMatcher(matcher="Glob", hooks=[ask_for_glob])]},  # type: ignore[dict-item]
        can_use_tool=no_poking,
    )
    agents = AgentCatalog({"team": HostedAgent("team", source=team)}, default="team")
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, agents=agents, approval_grace_seconds=0.2
    ) as runner:
        await sqlite_store.append("s-1", [SessionCreated()])
        poking = await run_turn(runner, sqlite_store, "s-1", '[call:mcp__team__poke {"what": "x"}]')
        glob = await run_turn(runner, sqlite_store, "s-1", '[call:Glob {"pattern": "*"}]')
    [denied] = only(poking, ToolCallDenied)
    assert denied.reason == "The team never pokes."
    assert not only(poking, ToolCallSucceeded)
    # "ask" from a team hook goes to agentlog's approval gate: a person answers it.
    [asked] = only(glob, ToolApprovalRequested)
    assert (asked.tool_name, asked.reason) == ("Glob", "Globbing needs a person's yes.")


async def test_an_agent_the_server_does_not_host_or_that_fails_writes_nothing(
    sqlite_store: StoreBase,
    scripted_model: ScriptedModel,
    catalog: AgentCatalog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(context: Any) -> ClaudeAgentOptions:
        if context.is_probe:
            return ClaudeAgentOptions()
        raise RuntimeError("the orders database is down")

    agents = AgentCatalog(
        {**catalog.agents, "broken": HostedAgent("broken", source=broken)}, default="support"
    )
    async with runner_on(sqlite_store, scripted_model, tmp_path, agents=agents) as runner:
        assert isinstance(runner, AgentRunner)
        await sqlite_store.append("gone", [SessionCreated(agent="retired")])
        with pytest.raises(UnknownAgent, match="no agent named 'retired'"):
            await runner.start("gone", "Hello")
        await sqlite_store.append("bad", [SessionCreated(agent="broken")])
        with pytest.raises(AgentOptionsFailed) as failed:
            await runner.start("bad", "Hello")
        # The caller learns what kind of failure; the team's message is for the operator.
        assert "RuntimeError" in str(failed.value)
        assert "database" not in str(failed.value)
        assert "the orders database is down" in caplog.text
        for session in ("gone", "bad"):
            assert await sqlite_store.head(session) == 1
            assert await runner.active_run(session) is None


async def test_a_teams_subagent_runs_with_its_own_prompt_and_the_teams_tools(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    researcher = AgentDefinition(
        description="Looks orders up",
        prompt="You are Acme's order researcher.",
        tools=["mcp__acme__lookup_order"],
    )
    team = ClaudeAgentOptions(
        mcp_servers={"acme": support.acme},
        allowed_tools=["mcp__acme__lookup_order", "Agent"],
        agents={"researcher": researcher},
    )
    agents = AgentCatalog({"team": HostedAgent("team", source=team)}, default="team")
    task = {
        "subagent_type": "researcher",
        "description": "Look the order up",
        "prompt": '[call:mcp__acme__lookup_order {"order_id": "A-1002"}]',
        # Left out, the CLI may launch the subagent in the background and end the turn first.
        "run_in_background": False,
    }
    async with runner_on(sqlite_store, scripted_model, tmp_path, agents=agents) as runner:
        await sqlite_store.append("s-1", [SessionCreated()])
        events = await run_turn(runner, sqlite_store, "s-1", f"[call:Agent {json.dumps(task)}]")
    calls = {c.tool_name: c for c in only(events, ToolCallStarted)}
    # The subagent's own call nests under the Agent call that started it.
    agent_call, lookup = calls["Agent"], calls["mcp__acme__lookup_order"]
    assert lookup.parent_tool_call_id == agent_call.tool_call_id
    outputs = {s.tool_call_id: s.output for s in only(events, ToolCallSucceeded)}
    assert "order A-1002: espresso machine" in outputs[lookup.tool_call_id]
    # The subagent was told the team's prompt for it.
    assert any(
        "You are Acme's order researcher." in json.dumps(r.get("system"))
        for r in scripted_model.requests
    )
    assert not only(events, RunFinished)[0].is_error
