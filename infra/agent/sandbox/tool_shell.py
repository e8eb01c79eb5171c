"""The shell the sandboxed CLI runs its Bash tool's commands through (`CLAUDE_CODE_SHELL_PREFIX`).

A tool runs with the CLI's uid in the CLI's namespaces, so without more it could open
`/proc/<cli pid>/fd/*` (the pipes the SDK reads as the model's stream) or signal the CLI. This
program puts itself in a Landlock domain of its own, takes on the run's limits (RunLimits) and
then runs the command in bash: a process in a Landlock domain cannot ptrace, and so cannot open
the fds or memory of, any process outside it (the CLI), and with Landlock ABI 6 or later it
cannot signal one either. Where Landlock is missing the command is refused (exit 126): it never
runs unseparated.

First it checks in at the run's tool gate (tool_gate.py), a unix socket the server serves,
which moves it into the tools' cgroup where the server has one (so a fork bomb fills the
tools' process count, not the CLI's) and says what the workspace has left: the command's
largest file is cut to it (AGENTLOG_RUN_WORKSPACE_MB); a refusal refuses the command (exit 126).

It runs inside the sandbox under `python3 -IS` (no site, no environment), so it imports only the
standard library. The CLI calls it with one argument, the command line for bash.
"""

from __future__ import annotations

import ctypes
import os
import resource
import socket
import struct
import sys

# Generic syscall numbers (the same on every architecture that has Landlock).
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
ACCESS_FS_WRITE_FILE = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS = 38
# The run's limits, {resource: value}: written in by the launcher (RunLimits.rlimits).
LIMITS: dict[int, int] = {}
# The run's tool gate, bound here by the launcher (bubblewrap.INSIDE_TOOL_GATE).
TOOL_GATE = "/run/agentlog-tools.sock"
# The least a command's largest file may be, however little the workspace has left: the CLI
# gives the command a file in /tmp as its stdout and stderr, which RLIMIT_FSIZE counts too, so
# with nothing left every command that prints would die (and none could clean up). Past the
# workspace's limit, the gate's meter stops a command that grows it.
OUTPUT_ROOM = 16 * 1024 * 1024


def check_in() -> None:
    """Ask the run's tool gate to take this process into the tools' cgroup, and wait for it:
    what this process then starts is counted there; and no file this command writes may be
    larger than what the workspace has left. No gate (an older launcher): nothing to do."""
    if not os.path.exists(TOOL_GATE):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
        gate.settimeout(60)
        gate.connect(TOOL_GATE)
        gate.sendall(b"join\n")
        answer = gate.makefile("rb").readline().decode(errors="replace").strip()
    word, _, left = answer.partition(" ")
    if word != "ok":
        raise OSError(f"the run's tool gate answered {answer or 'nothing'!r}")
    if left:
        largest = max(int(left), OUTPUT_ROOM)
        limit = LIMITS.get(resource.RLIMIT_FSIZE, resource.RLIM_INFINITY)
        if limit == resource.RLIM_INFINITY or largest < limit:
            LIMITS[resource.RLIMIT_FSIZE] = largest


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where it has none (or it is switched off)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    return max(0, int(abi))


def enter_own_domain() -> None:
    """Restrict this process (and all it starts) to a Landlock domain that denies nothing on
    files but reaches no process outside it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = landlock_abi()
    if abi < 1:
        raise OSError(ctypes.get_errno(), "Landlock is not available in this kernel")
    if abi >= 6:
        # Scopes alone make a domain: no file access is handled, so none is denied.
        attr = struct.pack("QQQ", 0, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    else:
        # Older kernels need a handled file access to make a domain; "/" allows it back.
        attr = struct.pack("Q", ACCESS_FS_WRITE_FILE)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        if abi < 6:
            root = os.open("/", os.O_PATH | os.O_CLOEXEC)
            try:
                rule = ctypes.create_string_buffer(struct.pack("=Qi", ACCESS_FS_WRITE_FILE, root))
                if libc.syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH, rule, 0) != 0:
                    raise OSError(ctypes.get_errno(), "landlock_add_rule failed")
            finally:
                os.close(root)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: tool_shell.py COMMAND")
    try:
        check_in()
        enter_own_domain()
        for limit, value in LIMITS.items():
            resource.setrlimit(limit, (value, value))
    except (OSError, ValueError) as exc:
        print(f"agentlog's sandbox did not run this command: {exc}", file=sys.stderr)
        sys.exit(126)
    os.execv("/bin/bash", ["/bin/bash", "-c", sys.argv[1]])


if __name__ == "__main__":
    main()
