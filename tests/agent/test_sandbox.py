"""Each run is confined and sees no secret: an enabled Bash, in the real CLI in bubblewrap,
probes what it can reach (its environment, the server's /proc, another session's workspace,
the server's files, the network) and finds nothing of the server's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentlog.domain.events import RunStarted, ToolCallStarted, ToolCallSucceeded
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.policy import ApprovalPolicy
from agentlog.infra.agent.run.runner import open_agent_runner
from agentlog.infra.agent.sandbox import bubblewrap
from agentlog.infra.agent.sandbox.bubblewrap import (
    PLACEHOLDER_API_KEY,
    SandboxUnavailable,
    sandbox_problem,
)
from agentlog.infra.sessions.workspaces import directory_name
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from tests.agent.test_runner import new_session, only, run_turn

pytestmark = pytest.mark.slow

SECRETS = {
    "AGENTLOG_API_TOKEN": "api-token-4f1e9c",
    "AGENTLOG_ADMIN_TOKEN": "admin-token-77ab20",
    "AGENTLOG_TOKEN_SECRET": "token-secret-0d3c55",
    "AGENTLOG_DATABASE_URL": "postgresql://agentlog:db-password-93ac1e@127.0.0.1:5432/prod",
    "AGENTLOG_REDIS_URL": "redis://:redis-password-51be7d@127.0.0.1:6379/0",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-8e02aa",
}
# The shared PostgreSQL on host loopback: a sandboxed tool must not reach it.
POSTGRES_PORT = 5432
SECRET_VALUES = [*SECRETS.values(), "db-password-93ac1e", "redis-password-51be7d"]


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


def need_sandbox() -> None:
    problem = sandbox_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the sandbox does not work here ({problem}); .ci/run installs it")
        pytest.skip(problem)


def probe(server_pid: int, other_file: Path, server_file: Path, port: int) -> str:
    """The command the operator gives the scripted model's shell scenario for this test."""
    return "; ".join(
        [
            "echo '== env'",
            "env",
            "echo '== server'",
            f"cat /proc/{server_pid}/environ 2>&1 || echo 'no server process'",
            "echo '== every process'",
            "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'",
            "echo '== other session'",
            f"cat {other_file} 2>&1 || echo 'no other workspace'",
            "echo '== server file'",
            f"cat {server_file} 2>&1 || echo 'no server file'",
            "echo '== network'",
            f"(timeout 3 bash -c 'echo > /dev/tcp/127.0.0.1/{port}' 2>&1 && echo reached) "
            "|| echo 'no network'",
            "echo '== own workspace'",
            "echo mine > own.txt && cat own.txt && pwd",
        ]
    )


async def bash_output(store: StoreBase, runner_events: list) -> str:  # type: ignore[type-arg]
    (started,) = [e for e in only(runner_events, ToolCallStarted) if e.tool_name == "Bash"]
    (done,) = only(runner_events, ToolCallSucceeded)
    assert done.tool_call_id == started.tool_call_id
    output = done.output
    if isinstance(output, dict):
        output = "\n".join(str(output.get(k, "")) for k in ("stdout", "stderr"))
    return str(output)


async def test_an_enabled_bash_sees_no_secret_and_nothing_outside_its_workspace(
    store: StoreBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_sandbox()
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)  # the server's environment, which the SDK passes on
    workspaces = tmp_path / "workspaces"
    other = workspaces / directory_name("someone-else") / "notes.txt"
    other.parent.mkdir(parents=True)
    other.write_text("someone else's notes 6a1f")
    server_file = tmp_path / "server-config.txt"
    server_file.write_text("server file c09d")
    command = probe(os.getpid(), other, server_file, POSTGRES_PORT)
    session = await new_session(store, "mine")
    async with (
        ScriptedModel(shell_command=command) as model,
        open_agent_runner(
            store,
            base_url=model.base_url,
            workspace_root=workspaces,
            run_home_root=tmp_path / "homes",
            enabled_tools=frozenset({"Bash"}),
            approval=ApprovalPolicy(),  # Bash would wait for a person's approval by default
        ) as runner,
    ):
        events = await run_turn(runner, store, session, "Run the demo in the shell.")
    output = await bash_output(store, events)
    assert "== own workspace" in output, output
    for value in SECRET_VALUES:
        assert value not in output
    assert "AGENTLOG_" not in output
    assert "someone else's notes" not in output and "no other workspace" in output
    assert "server file c09d" not in output and "no server file" in output
    assert "no server process" in output
    assert "reached" not in output and "no network" in output
    own = workspaces / directory_name("mine")
    assert (own / "own.txt").read_text() == "mine\n"  # the workspace is the sandbox's, writable
    assert f"\n{own}" in output  # and it runs there
    assert f"ANTHROPIC_API_KEY={PLACEHOLDER_API_KEY}" in output
    assert runner.agent_process_ids(only(events, RunStarted)[0].run_id) == []


async def test_the_real_model_key_stays_in_the_server(
    store: StoreBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the real model the gateway sends the key: the CLI and its tools see a placeholder."""
    need_sandbox()
    real_key = "sk-ant-real-key-3b9d70"
    async with ScriptedModel(shell_command="env") as model:
        assert model.base_url is not None
        monkeypatch.setenv("ANTHROPIC_API_KEY", real_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", model.base_url)  # the "API", on loopback
        session = await new_session(store)
        async with open_agent_runner(
            store,
            mode="claude",
            model="claude-sonnet-4-5",
            workspace_root=tmp_path / "workspaces",
            run_home_root=tmp_path / "homes",
            enabled_tools=frozenset({"Bash"}),
            approval=ApprovalPolicy(),  # Bash would wait for a person's approval by default
        ) as runner:
            events = await run_turn(runner, store, session, "Run the demo in the shell.")
        output = await bash_output(store, events)
        assert real_key not in output and PLACEHOLDER_API_KEY in output
        keys = {
            c.headers.get("x-api-key") for c in model.calls if c.path.startswith("/v1/messages")
        }
        assert keys == {real_key}


async def test_a_run_that_needs_the_sandbox_refuses_to_start_without_it(
    store: StoreBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await new_session(store)
    sandbox_problem.cache_clear()
    missing = tmp_path / "no-bwrap-here"
    monkeypatch.setattr(bubblewrap, "bwrap_executable", lambda: str(missing))
    try:
        async with ScriptedModel() as model:
            async with open_agent_runner(store, base_url=model.base_url) as runner:
                with pytest.raises(SandboxUnavailable) as refused:
                    await runner.start(session, "hello")
            assert "bwrap did not run" in str(refused.value)
            assert model.requests == []
        assert [e.type for e in await store.read(session)] == ["session_created"]
    finally:
        monkeypatch.undo()
        sandbox_problem.cache_clear()


def test_the_launcher_binds_the_config_directory_the_sdk_names_at_its_own_path(
    tmp_path: Path,
) -> None:
    """The SDK sets CLAUDE_CONFIG_DIR when it launches the CLI (to its resume directory in the
    server's temp dir, which the sandbox's own /tmp hides): the launcher passes the variable
    and binds that directory; without it, HOME is bound over itself."""
    from agentlog.infra.agent.sandbox.bubblewrap import launcher_script

    home = tmp_path / 'ho"me $x'
    workspace, resume, cli = tmp_path / "ws", tmp_path / "claude-resume-1", tmp_path / "cli.sh"
    for directory in (home / ".claude", workspace, resume):
        directory.mkdir(parents=True)
    # A stand-in CLI that reports what it sees from inside the sandbox.
    cli.write_text(
        '#!/bin/sh\necho "$CLAUDE_CONFIG_DIR"; ls "$CLAUDE_CONFIG_DIR" 2>/dev/null; exit 0\n'
    )
    cli.chmod(0o755)
    (resume / "transcript.jsonl").write_text("{}\n")
    socket = tmp_path / "model.sock"
    socket.touch()
    script = tmp_path / "launch.sh"
    script.write_text(
        launcher_script(
            cli=cli, workspace=workspace, home=home, passed_names=[], gateway_socket=socket
        )
    )
    script.chmod(0o700)
    need_sandbox()

    def launch(config_dir: Path | None) -> list[str]:
        env = {"PATH": "/usr/bin:/bin"}
        if config_dir is not None:
            env["CLAUDE_CONFIG_DIR"] = str(config_dir)
        done = subprocess.run(
            [str(script)], env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    assert launch(resume) == [str(resume), "transcript.jsonl"]
    assert launch(home / ".claude") == [str(home / ".claude")]
    assert launch(None)[0] == ""
