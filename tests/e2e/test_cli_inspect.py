"""The operator commands as a user runs them: real processes on a real database file.

They run as the installed `agentlog` console script, exactly as an operator types them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from queue import Empty, Queue

import pytest

from agentlog.domain.events import (
    ConversationRewound,
    HeartbeatRecorded,
    RunStarted,
    SessionCreated,
    ToolCallStarted,
)
from agentlog.infra.store.opening import open_store
from agentlog.transport.cli.main import main
from tests.integration.projection_helpers import a_run, seed

COMMAND = [str(Path(sys.executable).with_name("agentlog"))]
OPERATOR_COMMANDS = ["sessions", "inspect", "verify", "export", "import", "delete"]
POSITION = re.compile(r',"position":\d+')


def env_for(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTLOG_")}
    return {**env, "AGENTLOG_DATABASE_URL": database_url}


def agentlog(
    args: Sequence[str], database_url: str, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        env=env_for(database_url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def agentlog_many(
    runs: Sequence[Sequence[str]], database_url: str, cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Several independent commands at once (each process takes most of a second to start)."""
    procs = [
        subprocess.Popen(
            [*COMMAND, *args],
            cwd=cwd,
            env=env_for(database_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    done = []
    for args, proc in zip(runs, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess([*COMMAND, *args], proc.returncode, out, err))
    return done


@pytest.fixture
def db(sqlite_url: str) -> str:
    async def fill() -> None:
        async with open_store(sqlite_url) as store:
            await seed(store, sessions_count=3)
            await store.append(
                "s001",
                [
                    RunStarted(run_id="live-run", prompt="still\nworking"),
                    ToolCallStarted(
                        run_id="live-run", tool_call_id="call-9", tool_name="Bash", input="sleep"
                    ),
                ],
            )

    asyncio.run(fill())
    return sqlite_url


def db_path(database_url: str) -> str:
    return database_url.removeprefix("sqlite:///")


def test_every_command_has_help(db: str, tmp_path: Path) -> None:
    for command, result in zip(
        OPERATOR_COMMANDS,
        agentlog_many([[c, "--help"] for c in OPERATOR_COMMANDS], db, tmp_path),
        strict=True,
    ):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: agentlog {command}")
        assert result.stderr == ""


def test_sessions_is_a_table_or_json_lines(db: str, tmp_path: Path) -> None:
    table, as_json, running = agentlog_many(
        [["sessions"], ["sessions", "--json"], ["sessions", "--status", "running"]], db, tmp_path
    )
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "ID",
        "STATUS",
        "HEAD",
        "RUNS",
        "TOKENS",
        "IN/OUT",
        "COST",
        "LAST",
        "ACTIVITY",
        "TITLE",
    ]
    assert [row.split()[:4] for row in rows] == [
        ["s000", "idle", "11", "1"],
        ["s001", "running", "13", "2"],
        ["s002", "idle", "11", "1"],
    ]
    assert "\x1b[" not in table.stdout  # not a terminal: no colours
    sessions = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(s["id"], s["status"], s["head"]) for s in sessions] == [
        ("s000", "idle", 11),
        ("s001", "running", 13),
        ("s002", "idle", 11),
    ]
    assert sessions[1]["active_run"] == {"run_id": "live-run"}
    assert [line.split()[0] for line in running.stdout.splitlines()[1:]] == ["s001"]


def test_inspect_shows_events_in_order_with_filters(db: str, tmp_path: Path) -> None:
    everything, tools, tail = agentlog_many(
        [
            ["inspect", "s001"],
            ["inspect", "s001", "--type", "tool_call_started", "--run", "live"],
            ["inspect", "s001", "--offset", "-2", "--json"],
        ],
        db,
        tmp_path,
    )
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(1, 14))
    assert re.match(
        r"^ +7  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  tool_call_started +s001-r0 +"
        r"Bash s001-r0-t0 input: null$",
        lines[6],
    )
    # The prompt's newline is escaped: one event, one line.
    assert lines[11].endswith("prompt: still\\nworking (agent scripted)")
    (only,) = tools.stdout.splitlines()
    assert only.endswith("  tool_call_started    live-run      Bash call-9 input: sleep")
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [(e["seq"], e["type"], e["run_id"]) for e in events] == [
        (12, "run_started", "live-run"),
        (13, "tool_call_started", "live-run"),
    ]


def test_inspect_follow_tails_new_events_until_ctrl_c(db: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*COMMAND, "inspect", "s002", "--follow", "--json", "--offset", "10"],
        cwd=tmp_path,
        env=env_for(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: Queue[str] = Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []])
    reader.start()
    try:
        assert json.loads(lines.get(timeout=30))["seq"] == 11

        async def append() -> None:
            async with open_store(db) as store:
                await store.append("s002", [HeartbeatRecorded()])

        asyncio.run(append())  # another process: only the re-check can notice it
        beat = json.loads(lines.get(timeout=10))
        assert (beat["seq"], beat["type"]) == (12, "heartbeat")
        with pytest.raises(Empty):
            lines.get(timeout=0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(10)
    assert proc.stderr is not None and proc.stderr.read() == ""


def test_verify_passes_then_reports_a_corrupted_log(db: str, tmp_path: Path) -> None:
    ok = agentlog(["verify"], db, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == "agentlog: verified 3 sessions, 35 events, positions 1-35: no problems\n"

    conn = sqlite3.connect(db_path(db))
    conn.execute(
        "DELETE FROM agentlog_events WHERE originator_id = 's002' AND originator_version = 4"
    )
    conn.commit()
    conn.close()
    whole, one, other = agentlog_many(
        [["verify"], ["verify", "--session", "s002"], ["verify", "--session", "s001"]], db, tmp_path
    )
    assert whole.returncode == 1
    assert whole.stdout.splitlines() == [
        "log: position 26 missing (last 35)",
        "session s002: seq 4 missing (head 11)",
        "agentlog: 2 problems in 1 of 3 sessions (3 sessions, 34 events, positions 1-35)",
    ]
    assert one.returncode == 1
    assert one.stdout.splitlines()[0] == "session s002: seq 4 missing (head 11)"
    assert other.returncode == 0


def test_export_then_import_elsewhere_round_trips(db: str, tmp_path: Path) -> None:
    exported = tmp_path / "s001.jsonl"
    result = agentlog(["export", "s001", "-o", str(exported)], db, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"agentlog: exported 13 events and 0 transcript entries of session 's001' to {exported}\n"
    )
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = agentlog(["import", str(exported)], other, tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "imported session 's001': 13 events (seqs 1-13) at positions 1-13" in imported.stdout
    again, twice, copy = agentlog_many(
        [["export", "s001"], ["import", str(exported)], ["import", "-", "--as", "copy"]],
        other,
        tmp_path,
    )
    original = exported.read_text()
    assert POSITION.sub("", again.stdout) == POSITION.sub("", original)
    assert twice.returncode == 1
    assert twice.stderr == (
        "agentlog: session 's001' already exists; use --as NEW_ID to import a copy\n"
    )
    # (copy read an empty stdin: nothing to import)
    assert copy.returncode == 1 and copy.stderr == "agentlog: the file holds no events\n"
    piped = agentlog(["import", "-", "--as", "copy"], other, tmp_path, stdin=original)
    assert piped.returncode == 0, piped.stderr
    assert "at positions 14-26" in piped.stdout


def test_bad_input_is_one_line_and_a_non_zero_exit(db: str, tmp_path: Path) -> None:
    cases = [
        (["inspect"], 2, "agentlog inspect: error: the following arguments are required: SESSION"),
        (["inspect", "s001", "--offset", "x"], 2, "argument --offset: invalid int value: 'x'"),
        (["inspect", "nobody"], 1, "agentlog: session 'nobody' does not exist"),
        (["--database-url", "mysql://x/y", "sessions"], 2, "unsupported database URL scheme"),
        (["--database-url", "postgresql://postgres@127.0.0.1:1/test", "sessions"], 1, "agentlog: "),
    ]
    results = agentlog_many([args for args, _, _ in cases], db, tmp_path)
    for (args, code, message), result in zip(cases, results, strict=True):
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["inspect", "s001", "--offset", "99"], 1, "--offset 99 is beyond the session's head 13"),
        (["inspect", "s001", "--type", "nope"], 1, "unknown event type 'nope'"),
        (["verify", "--session", "nobody"], 1, "session 'nobody' does not exist"),
        (["export", "nobody", "-o", "out.jsonl"], 1, "session 'nobody' does not exist"),
        (["import", "missing.jsonl"], 1, "No such file or directory"),
        (["import", "bad.jsonl"], 1, "line 1: not an exported event"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        (["--database-url", "sqlite:///nowhere.db", "sessions"], 1, "no database at nowhere.db"),
    ],
)
def test_more_bad_input_in_process(
    db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    """The same entry point, without a process per case."""
    (tmp_path / "bad.jsonl").write_text('{"seq": 2}\n')
    monkeypatch.chdir(tmp_path)
    for name, value in env_for(db).items():
        monkeypatch.setenv(name, value)
    try:
        returned = main(args)
    except SystemExit as exit:  # argparse's usage errors
        returned = int(exit.code or 0)
    out, err = capsys.readouterr()
    assert (returned, out) == (code, "")
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "nowhere.db").exists()
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "out.jsonl").exists()


def test_reading_the_log_does_not_need_redis(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator investigating an outage can read the log while Redis is down; only a
    command that must wake or wait for servers needs it."""
    for name, value in env_for(db).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AGENTLOG_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["sessions"]) == 0
    assert main(["verify"]) == 0
    capsys.readouterr()
    assert main(["inspect", "s001", "--follow"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("agentlog: redis error: ") and len(err.splitlines()) == 1


def test_inspect_shows_every_event_and_marks_what_a_rewind_set_aside(
    sqlite_url: str, tmp_path: Path
) -> None:
    async def fill() -> tuple[int, int]:
        async with open_store(sqlite_url) as store:
            await store.append("rw", [SessionCreated()])
            await store.append("rw", a_run("first", tools=1))
            [second] = await store.append("rw", [RunStarted(run_id="second", prompt="again")])
            await store.append("rw", a_run("second", tools=1)[1:])
            rewind, _ = await store.append(
                "rw",
                [
                    ConversationRewound(
                        to_seq=second - 1,
                        agent_session="branch",
                        trigger="regenerate",
                        message_id="second",
                    ),
                    RunStarted(run_id="third", prompt="again"),
                ],
            )
            await store.append("rw", a_run("third", tools=1)[1:])
            return second, rewind

    second, rewind = asyncio.run(fill())
    text, as_json, verify = agentlog_many(
        [["inspect", "rw"], ["inspect", "rw", "--json"], ["verify", "--session", "rw"]],
        sqlite_url,
        tmp_path,
    )
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(1, len(lines) + 1))
    marked = [int(line.split()[0]) for line in lines if f"[set aside by {rewind}]" in line]
    assert marked == list(range(second, rewind))
    assert lines[rewind - 1].endswith(
        f"regenerate from message second: back to seq {second - 1} "
        f"(seqs {second}..{rewind - 1} set aside)"
    )
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(lines) + 1))
    assert verify.returncode == 0, verify.stdout + verify.stderr
