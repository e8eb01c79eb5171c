"""Fixtures for running the real bundled Claude CLI against the scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import ClaudeAgentOptions

from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as store:
        yield store


@pytest.fixture
async def scripted_model() -> AsyncIterator[ScriptedModel]:
    async with ScriptedModel() as model:
        yield model


@pytest.fixture
def agent_options(
    scripted_model: ScriptedModel, tmp_path: Path
) -> Callable[..., ClaudeAgentOptions]:
    """Options for the real CLI: the scripted model, an empty HOME, no user or project settings.

    Tools are allowed by name: `bypassPermissions` is refused when the tests run as root.
    """
    home = tmp_path / "home"
    workspace = tmp_path / "workspace"
    home.mkdir()
    workspace.mkdir()

    def build(**overrides: Any) -> ClaudeAgentOptions:
        settings: dict[str, Any] = {
            "env": scripted_model.cli_env(home),
            "cwd": str(workspace),
            "setting_sources": [],
            "include_partial_messages": True,
            "model": "claude-sonnet-4-5",
            "allowed_tools": ["Bash", "Read", "mcp__demo__add", "mcp__demo__slow_op"],
        }
        settings.update(overrides)
        return ClaudeAgentOptions(**settings)

    return build
