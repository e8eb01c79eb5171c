"""The operator commands: `agentlog sessions`, `inspect`, `verify`, `export`, `import`, `delete`,
`fork`.

They read the same database as the server (AGENTLOG_DATABASE_URL), so what they show is what
the log holds, not what a server believes. `add_commands(subparsers)` registers them on the
`agentlog` parser and `run_command(settings, args)` runs the one chosen; until they are wired
into agentlog.transport.cli.main, `python -m agentlog.transport.cli.inspect ...` runs them alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn, TextIO

import msgspec

from agentlog.domain.errors import AgentlogError, SessionAlreadyExists
from agentlog.domain.events import (
    EVENT_TYPES,
    AgentErrorReported,
    AgentInitialized,
    AgentStatusReported,
    ConversationRewound,
    CustomEventRecorded,
    Event,
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionForked,
    StepFinished,
    StepStarted,
    TextCompleted,
    TextDelta,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
    encode_recorded,
)
from agentlog.domain.ports.event_store import EventStore
from agentlog.infra.sessions.deletion import delete_log
from agentlog.infra.sessions.importing import (
    export_lines,
    import_session,
    is_attachment_line,
    is_transcript_line,
    parse_export,
)
from agentlog.infra.sessions.status import summaries_page, summary_json
from agentlog.infra.sessions.tombstone import deleted_at
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.sessions.workspaces import directory_name
from agentlog.infra.store.deployment import default_workspace_root, deployment_key
from agentlog.infra.store.imported_session import ImportedSession
from agentlog.infra.store.opening import driver_failure, open_store, parse_database_url
from agentlog.infra.store.store import OnBackend, Store
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.usage import Usage
from agentlog.projections.verification import Problem, verify_session
from agentlog.transport.http.sessions import SESSION_ID
from agentlog.transport.settings import Settings

COMMANDS = frozenset({"sessions", "inspect", "verify", "export", "import", "delete", "fork"})

# How often `inspect --follow` reads the log without a wake-up: a SQLite log written by a
# server process never wakes this one, and a lost wake-up must only delay.
FOLLOW_RECHECK_SECONDS = 0.5
_PAGE = 1000
_EXCERPT = 80


class CommandError(AgentlogError):
    """A command cannot do what was asked; the message is the one line the user sees."""

    code = "command_error"


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), pointing at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- registration ----------------------------------------------------------------------------


def add_commands(subparsers: Any) -> None:
    """Register the operator commands on the `agentlog` command's subparsers."""
    sessions = subparsers.add_parser(
        "sessions",
        help="list sessions: id, status, head seq, runs, last activity",
        description="List every session with its status, head seq, runs and last activity.",
    )
    sessions.add_argument("--status", help="only sessions with this status (running, idle, ...)")
    sessions.add_argument("--json", action="store_true", help="one JSON object per line")

    inspect = subparsers.add_parser(
        "inspect",
        help="show a session's events in order (--follow to keep tailing)",
        description=(
            "Show a session's events in seq order: seq, time, type, run and a one-line summary. "
            "Colours by kind on a terminal (NO_COLOR turns them off)."
        ),
    )
    inspect.add_argument("session_id", metavar="SESSION", help="the session's id")
    inspect.add_argument(
        "--offset",
        type=int,
        default=0,
        metavar="N",
        help="start after seq N; a negative N shows the last -N events (default 0)",
    )
    inspect.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="T",
        help="only events of this type (repeatable, or comma-separated)",
    )
    inspect.add_argument(
        "--run", metavar="RUN", help="only events of this run (its id, or the start of it)"
    )
    inspect.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C"
    )
    inspect.add_argument(
        "--json", action="store_true", help="one event per line, as JSON (the export form)"
    )

    verify = subparsers.add_parser(
        "verify",
        help="check the log's invariants; exit 1 with a report when one fails",
        description=(
            "Check dense seqs and positions, sessions-table heads, that every tool call and run "
            "ended exactly once (or is still running), and that the projections equal a fresh "
            "fold. Prints one line per problem and exits 1 if there is any."
        ),
    )
    verify.add_argument("--session", dest="session_id", metavar="ID", help="only this session")

    export = subparsers.add_parser(
        "export",
        help="write a session's events as JSON lines",
        description="Write the session's events, one JSON object per line, in seq order.",
    )
    export.add_argument("session_id", metavar="SESSION", help="the session's id")
    export.add_argument(
        "--output", "-o", metavar="FILE", help="write to FILE instead of standard output"
    )

    delete = subparsers.add_parser(
        "delete",
        help="delete a session for good: its events, projections and transcripts",
        description=(
            "Delete a session: its events, projection rows, idempotency keys, run index and the "
            "CLI's transcripts, and its working directory on this host, leaving a tombstone so "
            "the id answers 410 and is never reused. Refuses a session with an active run "
            "(cancel it first, or DELETE /v1/sessions/{id}, which cancels it) unless --force."
        ),
    )
    delete.add_argument("session_id", metavar="SESSION", help="the session's id")
    delete.add_argument(
        "--force", action="store_true", help="delete even while a run is active (it is fenced)"
    )

    fork = subparsers.add_parser(
        "fork",
        help="fork a session at a seq: a new session with its conversation up to there",
        description=(
            "Create a session whose conversation is SESSION's up to seq N (its current branch "
            "then), as POST /v1/sessions/{id}/fork does: the events get the new session's own "
            "seqs, then session_forked; its next run continues from there. SESSION is not "
            "changed. N must not be inside a run, nor where a tool approval waits."
        ),
    )
    fork.add_argument("session_id", metavar="SESSION", help="the session to fork")
    fork.add_argument(
        "--at", dest="at_seq", type=int, required=True, metavar="N", help="the seq to fork at"
    )
    fork.add_argument(
        "--id", dest="new_id", metavar="NEW_ID", help="the new session's id (default: random)"
    )

    importing = subparsers.add_parser(
        "import",
        help="create a session from an export file",
        description=(
            "Create a session from an `agentlog export` file with the same seqs, event JSON "
            "and times. Positions are global to a database, so the events get this database's "
            "next positions. An existing session is never touched: use --as to import a copy."
        ),
    )
    importing.add_argument("file", metavar="FILE", help="the export file ('-' for stdin)")
    importing.add_argument(
        "--as", dest="rename_to", metavar="NEW_ID", help="import under this session id instead"
    )


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run the parsed command; a backend driver's errors (the database's, Redis's) become
    one-line CommandErrors."""
    try:
        return asyncio.run(_dispatch(settings, args))
    except BrokenPipeError:
        # The reader of our output went away (`| head`): stop quietly, as shell tools do.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        failure = driver_failure(exc)
        if failure is None:
            raise
        raise CommandError(failure) from None


async def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    command = args.command
    if command == "sessions":
        return await run_sessions(settings, status=args.status, as_json=args.json)
    if command == "inspect":
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if args.follow:
            # Ctrl-C ends a follow cleanly: the store closes and the exit code is 0.
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        return await run_inspect(
            settings,
            args.session_id,
            offset=args.offset,
            types=args.types,
            run=args.run,
            follow=args.follow,
            as_json=args.json,
            stop=stop,
        )
    if command == "verify":
        return await run_verify(settings, args.session_id)
    if command == "export":
        return await run_export(settings, args.session_id, args.output)
    if command == "import":
        return await run_import(settings, args.file, rename_to=args.rename_to)
    if command == "delete":
        return await run_delete(settings, args.session_id, force=args.force)
    if command == "fork":
        return await run_fork(settings, args.session_id, args.at_seq, args.new_id)
    raise AssertionError(f"not an operator command: {command}")


@asynccontextmanager
async def _open(
    settings: Settings, *, create: bool = False, wakeups: bool = False
) -> AsyncIterator[Store]:
    """The store. Reading commands refuse a database that does not exist yet (opening would
    create an empty one and answer as if the log were empty), and only commands that wake or
    wait for others use Redis: an operator can read the log while Redis is down."""
    if not create:
        require_database(settings)
    async with open_store(
        settings.database_url,
        redis_url=settings.redis_url if wakeups else None,
        max_event_bytes=settings.max_event_bytes,
    ) as store:
        yield store


def require_database(settings: Settings) -> None:
    url = parse_database_url(settings.database_url)
    if not url.exists():
        raise CommandError(
            f"no database at {url.location} (set AGENTLOG_DATABASE_URL or --database-url)"
        )


# -- colours ---------------------------------------------------------------------------------


def wants_colour(stream: IO[Any]) -> bool:
    """ANSI colours only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


RED, YELLOW, GREEN, CYAN, MAGENTA, BLUE, DIM, BOLD = (
    "31",
    "33",
    "32",
    "36",
    "35",
    "1;34",
    "2",
    "1",
)
_KIND_COLOUR: dict[type, str] = {
    SessionCreated: MAGENTA,
    SessionForked: MAGENTA,
    CustomEventRecorded: MAGENTA,
    RunStarted: BLUE,
    RunFinished: BLUE,
    ConversationRewound: YELLOW,
    RunCancelled: YELLOW,
    RunFailed: RED,
    RunAbandoned: RED,
    AgentErrorReported: RED,
    ToolCallFailed: RED,
    ToolCallDenied: RED,
    ToolApprovalRequested: YELLOW,
    ToolApprovalResponded: YELLOW,
    ToolCallStarted: CYAN,
    ToolCallSucceeded: CYAN,
    ToolInputDelta: CYAN,
    TextCompleted: GREEN,
    TextDelta: GREEN,
    ReasoningCompleted: MAGENTA,
    ReasoningDelta: MAGENTA,
}
_STATUS_COLOUR = {
    "running": GREEN,
    "failed": RED,
    "abandoned": YELLOW,
    "awaiting_approval": YELLOW,
}


def paint(text: str, code: str | None, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def event_colour(event: Event) -> str:
    if isinstance(event, RunFinished) and event.is_error:
        return RED
    return _KIND_COLOUR.get(type(event), DIM)


# -- one line per event ----------------------------------------------------------------------

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
_json = msgspec.json.Encoder()


def excerpt(value: Any, width: int = _EXCERPT) -> str:
    """One line of at most `width` characters; control characters (a tool's ANSI colours,
    newlines) are escaped so they cannot repaint the operator's terminal."""
    if not isinstance(value, str):
        try:
            value = _json.encode(value).decode()
        except (TypeError, msgspec.EncodeError):
            value = repr(value)
    text = str(value).translate(_CONTROL)
    return text if len(text) <= width else text[: width - 3] + "..."


def summarize(event: Event) -> str:
    """What an operator needs from the event in one line: text, tool and call id, error."""
    e: Any = event
    kind = type(event)
    if kind is SessionCreated:
        parts = [f"title: {excerpt(e.title)}" if e.title else "untitled"]
        if e.metadata:
            parts.append(f"metadata: {excerpt(e.metadata, 60)}")
        if e.agent not in (None, "demo"):  # the built-in agent goes without saying
            parts.append(f"agent: {excerpt(e.agent, 60)}")
        return ", ".join(parts)
    if kind is CustomEventRecorded:
        return f"{e.name}: {excerpt(e.data)}"
    if kind is SessionForked:
        return f"forked from {excerpt(e.from_session_id, 60)} at seq {e.at_seq}"
    if kind is RunStarted:
        # A team's agent: which one, and which version of its options (agents/fingerprint.py).
        team = f" {excerpt(e.agent_name, 40)} {e.agent_fingerprint}" if e.agent_fingerprint else ""
        return f"prompt: {excerpt(e.prompt)} (agent {e.agent}{team})"
    if kind is ConversationRewound:
        message = f" from message {excerpt(e.message_id, 50)}" if e.message_id else ""
        return f"{e.trigger}{message}: back to seq {e.to_seq}"
    if kind is AgentInitialized:
        return f"model {e.model or '?'}, {len(e.tools)} tools, cwd {e.cwd or '?'}"
    if kind is AgentStatusReported:
        return f"{e.subtype} {excerpt(e.data, 60)}" if e.data else e.subtype
    if kind is StepStarted:
        return f"message {e.message_id}" + (f" model {e.model}" if e.model else "")
    if kind is StepFinished:
        usage = e.usage or {}
        tokens = (
            f" tokens in {usage.get('input_tokens', '?')} out {usage.get('output_tokens', '?')}"
            if usage
            else ""
        )
        cut = " (abandoned)" if e.abandoned else ""
        return f"message {e.message_id} stop {e.stop_reason or '-'}{tokens}{cut}"
    if kind in (TextDelta, ReasoningDelta):
        return f"#{e.block_index} {excerpt(e.delta)}"
    if kind in (TextCompleted, ReasoningCompleted):
        return f"#{e.block_index} {excerpt(e.text)}"
    if kind is ToolInputDelta:
        return f"{e.tool_name} {e.tool_call_id} {excerpt(e.delta, 60)}"
    if kind is ToolCallStarted:
        return f"{e.tool_name} {e.tool_call_id} input: {excerpt(e.input, 60)}"
    if kind is ToolCallSucceeded:
        source = f" [{e.source}]" if e.source != "agent" else ""
        return f"{e.tool_call_id} output: {excerpt(e.output, 60)}{source}"
    if kind is ToolCallFailed:
        cut = " (interrupted)" if e.interrupted else ""
        source = f" [{e.source}]" if e.source != "agent" else ""
        return f"{e.tool_call_id} error: {excerpt(e.error_text, 60)}{cut}{source}"
    if kind is ToolCallDenied:
        return f"{e.tool_call_id} denied: {excerpt(e.reason, 60)}"
    if kind is ToolApprovalRequested:
        return f"{e.approval_id} {e.tool_name} asks: {excerpt(e.input, 60)}"
    if kind is ToolApprovalResponded:
        answer = "approved" if e.approved else "denied"
        by = f" by {e.responder}" if e.responder else ""
        said = f": {excerpt(e.reason, 60)}" if e.reason else ""
        return f"{e.approval_id} {answer}{by}{said}"
    if kind is AgentErrorReported:
        status = f" {e.status}" if e.status is not None else ""
        return f"{e.kind}{status}: {excerpt(e.message)}"
    if kind is RunFinished:
        parts = [f"{'error' if e.is_error else 'result'}: {excerpt(e.result, 60)}"]
        if e.total_cost_usd is not None:
            parts.append(f"${e.total_cost_usd:.4f}")
        parts.append(f"{e.num_turns} turns")
        return ", ".join(parts)
    if kind is RunFailed:
        reason = f" ({e.terminal_reason})" if e.terminal_reason else ""
        return f"error: {excerpt(e.error)}{reason}"
    if kind in (RunCancelled, RunAbandoned):
        return f"reason: {excerpt(e.reason)}"
    return ""


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def event_line(
    recorded: RecordedEvent, *, colour: bool = False, set_aside_by: int | None = None
) -> str:
    """`seq  time  type  run  summary`; `set_aside_by`: the seq of the rewind that took the
    event off the current branch (it is marked, and dimmed on a terminal)."""
    code = event_colour(recorded.event)
    run = (recorded.run_id or "-")[:12]
    summary = summarize(recorded.event)
    if isinstance(recorded.event, ConversationRewound):
        after = recorded.event.to_seq + 1
        if after < recorded.seq:
            summary += f" (seqs {after}..{recorded.seq - 1} set aside)"
    marker = ""
    if set_aside_by is not None:
        marker = f"[set aside by {set_aside_by}] "
        code = DIM
    return (
        f"{recorded.seq:>6}  {paint(format_time(recorded.time), DIM, colour)}  "
        f"{paint(f'{recorded.type:<19}', code, colour)}  {run:<12}  "
        f"{paint(marker + summary, code if code != DIM or marker else None, colour)}"
    ).rstrip()


class SetAside:
    """Which events a rewind took off the current branch: those strictly between a
    `conversation_rewound`'s `to_seq` and its own seq
    (agentlog.domain.rules.branches.current_branch)."""

    def __init__(self) -> None:
        self.spans: dict[int, int] = {}  # rewind seq -> its to_seq, in log order

    def learn(self, recorded: RecordedEvent) -> None:
        if isinstance(recorded.event, ConversationRewound):
            self.spans.setdefault(recorded.seq, recorded.event.to_seq)

    def by(self, seq: int) -> int | None:
        """The seq of the first rewind that set `seq` aside, or None when it is on the branch."""
        return next((at for at, to_seq in self.spans.items() if to_seq < seq < at), None)


# -- sessions --------------------------------------------------------------------------------


async def run_sessions(
    settings: Settings,
    *,
    status: str | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    page_size: int = 200,
) -> int:
    out = out or sys.stdout
    rows: list[SessionSummary] = []
    async with _open(settings) as store:
        after: str | None = None
        while True:
            page = await summaries_page(store, after, page_size)
            chosen = [
                s for s in page if (status is None and s.status != "deleted") or s.status == status
            ]
            if as_json:
                for summary in chosen:
                    out.write(msgspec.json.encode(summary_json(summary)).decode() + "\n")
            else:
                rows += chosen
            if len(page) < page_size:
                break
            after = page[-1].session_id
    if not as_json:
        out.write(sessions_table(rows, colour=wants_colour(out)))
    out.flush()
    return 0


def format_cost(usage: Usage) -> str:
    """Dollars, or "scripted" when only the scripted model ran (it costs nothing)."""
    if not usage.runs:
        return ""
    if usage.scripted_runs == usage.runs:
        return "scripted"
    return f"${usage.cost_usd:.4f}"


def sessions_table(rows: Sequence[SessionSummary], *, colour: bool = False) -> str:
    """A plain table, columns as wide as their widest value."""
    header = ("ID", "STATUS", "HEAD", "RUNS", "TOKENS IN/OUT", "COST", "LAST ACTIVITY", "TITLE")
    cells = [
        (
            s.session_id,
            s.status,
            str(s.head),
            str(s.runs),
            f"{s.usage.input_tokens}/{s.usage.output_tokens}" if s.usage.runs else "",
            format_cost(s.usage),
            format_time(s.last_activity_at),
            excerpt(s.title or "", 40),
        )
        for s in rows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    right = {2, 3, 4, 5}

    def line(row: Sequence[str], status_code: str | None = None) -> str:
        out = []
        for i, value in enumerate(row):
            padded = value.rjust(widths[i]) if i in right else value.ljust(widths[i])
            out.append(paint(padded, status_code, colour) if i == 1 else padded)
        return "  ".join(out).rstrip() + "\n"

    text = line(header)
    for row in cells:
        text += line(row, _STATUS_COLOUR.get(row[1]))
    if not rows:
        text += "(no sessions)\n"
    return text


# -- inspect ---------------------------------------------------------------------------------


def parse_types(given: Sequence[str]) -> frozenset[str]:
    types = {t.strip() for value in given for t in value.split(",") if t.strip()}
    unknown = sorted(types - EVENT_TYPES.keys())
    if unknown:
        raise CommandError(
            f"unknown event type {unknown[0]!r}; known types: {', '.join(sorted(EVENT_TYPES))}"
        )
    return frozenset(types)


async def run_inspect(
    settings: Settings,
    session_id: str,
    *,
    offset: int = 0,
    types: Sequence[str] = (),
    run: str | None = None,
    follow: bool = False,
    as_json: bool = False,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
    recheck_seconds: float = FOLLOW_RECHECK_SECONDS,
) -> int:
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    wanted = parse_types(types)
    colour = not as_json and wants_colour(out)

    set_aside = SetAside()

    def show(page: Sequence[RecordedEvent]) -> None:
        lines = []
        for recorded in page:
            set_aside.learn(recorded)
            if wanted and recorded.type not in wanted:
                continue
            if run is not None and not (recorded.run_id or "").startswith(run):
                continue
            if as_json:
                lines.append(encode_recorded(recorded).decode())
            else:
                by = set_aside.by(recorded.seq)
                lines.append(event_line(recorded, colour=colour, set_aside_by=by))
        if lines:
            out.write("\n".join(lines) + "\n")
            out.flush()

    async with _open(settings, wakeups=follow) as store:
        head = await store.head(session_id)  # UnknownSession: one line from the CLI
        if offset > head:
            raise CommandError(f"--offset {offset} is beyond the session's head {head}")
        after = offset if offset >= 0 else max(0, head + offset)
        if not as_json:
            # Every rewind in the log so far, first: a rewind marks events before it.
            await _rewinds_until(store, session_id, head, set_aside)
        if not follow:
            await _print_after(store, session_id, after, show)
            return 0
        # Subscribed before reading: anything committed after a read wakes us (in this
        # process or through Redis/NOTIFY); the re-check covers a SQLite writer elsewhere.
        async with store.subscribe(session_id) as wakeup:
            while not stop.is_set():
                after = await _print_after(store, session_id, after, show)
                await _wait_for_either(wakeup.wait(recheck_seconds), stop)
    return 0


async def _rewinds_until(
    store: EventStore, session_id: str, head: int, set_aside: SetAside
) -> None:
    after = 0
    while after < head:
        page = await store.read(session_id, after=after, limit=_PAGE)
        if not page:
            return
        for recorded in page:
            if recorded.seq <= head:
                set_aside.learn(recorded)
        after = page[-1].seq


async def _print_after(store: EventStore, session_id: str, after: int, show: Any) -> int:
    while True:
        page = await store.read(session_id, after=after, limit=_PAGE)
        if page:
            show(page)
            after = page[-1].seq
        if len(page) < _PAGE:
            return after


async def _wait_for_either(woken: Any, stop: asyncio.Event) -> None:
    waiting = asyncio.ensure_future(woken)
    stopping = asyncio.ensure_future(stop.wait())
    _, pending = await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- verify ----------------------------------------------------------------------------------


async def run_verify(settings: Settings, session_id: str | None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    colour = wants_colour(out)

    def show(problem: Problem) -> None:
        out.write(paint(str(problem), RED, colour) + "\n")
        out.flush()

    async with _open(settings) as store:
        report = await verify_log(store, session_id, on_problem=show)
    what = (
        f"session {session_id!r}, {report.events:,} events"
        if session_id is not None
        else f"{report.sessions:,} sessions, {report.events:,} events, "
        f"positions 1-{report.last_position:,}"
    )
    if not report.problems:
        out.write(f"agentlog: verified {what}: no problems\n")
        return 0
    count = len(report.problems)
    affected = len(report.sessions_with_problems)
    out.write(
        f"agentlog: {count} problem{'s' if count != 1 else ''} in {affected} of "
        f"{report.sessions:,} sessions ({what})\n"
    )
    return 1


# -- export and import ---------------------------------------------------------------------


async def run_delete(
    settings: Settings, session_id: str, *, force: bool = False, out: TextIO | None = None
) -> int:
    """`agentlog delete SESSION`: agentlog.infra.sessions.deletion's path, without a runner to
    cancel."""
    out = out or sys.stdout
    async with _open(settings, wakeups=True) as store:  # wakes a server's live followers
        when = await deleted_at(store, session_id)
        if when is not None:
            raise CommandError(f"session {session_id} was already deleted at {when.isoformat()}")
        await store.head(session_id)  # UnknownSession
        active = await store.current_run(session_id)
        if active is not None and active.ended_seq is None and not force:
            raise CommandError(
                f"session {session_id} has an active run ({active.run_id}): cancel it first, "
                "delete it over HTTP (which cancels it), or pass --force"
            )
        deletion = await delete_log(store, session_id, "requested")
        root = await _workspace_root(settings, store)
    shutil.rmtree(root / directory_name(session_id), ignore_errors=True)
    out.write(
        f"deleted session {session_id}: {deletion.events_removed} events removed, "
        f"tombstone at seq {deletion.tombstone_seq}\n"
    )
    out.flush()
    return 0


async def run_fork(
    settings: Settings,
    session_id: str,
    at_seq: int,
    new_id: str | None = None,
    out: TextIO | None = None,
) -> int:
    """`agentlog fork SESSION --at N [--id NEW_ID]`: agentlog.infra.sessions.forking's path, as the
    HTTP route."""
    from agentlog.infra.sessions.forking import fork_session

    out = out or sys.stdout
    new_id = new_id if new_id is not None else uuid.uuid4().hex
    if not SESSION_ID.fullmatch(new_id):
        raise CommandError(
            f"--id {new_id!r}: a session id is 1 to 128 characters of letters, digits, '_', "
            "'.', ':' or '-', starting with a letter or digit"
        )
    async with _open(settings, wakeups=True) as store:  # wakes a server's projector
        made = await fork_session(
            store,
            session_id,
            at_seq,
            new_id,
            cwd=str(((await _workspace_root(settings, store)) / directory_name(new_id)).resolve()),
        )
    again = " (it existed already: the same fork)" if made.repeated else ""
    out.write(
        f"forked session {session_id} at seq {at_seq} as {new_id}{again}: {made.copied} events "
        f"copied (seqs 1-{made.copied}), session_forked at seq {made.copied + 1}\n"
    )
    out.flush()
    return 0


async def _workspace_root(settings: Settings, store: OnBackend) -> Path:
    """Where a server on this database keeps its sessions' directories (the runner's choice)."""
    if settings.agent.workspace_root is not None:
        return settings.agent.workspace_root
    return default_workspace_root(await deployment_key(store))


async def run_export(
    settings: Settings, session_id: str, output: str | None, out: TextIO | None = None
) -> int:
    async with _open(settings) as store:
        await store.head(session_id)  # UnknownSession before any file is created
        if await deleted_at(store, session_id) is not None:
            raise CommandError(f"session {session_id} was deleted: there is nothing to export")
        if output is None or output == "-":
            stream = out or sys.stdout
            async for line in export_lines(store, session_id):
                stream.write(line.decode())
            stream.flush()
            return 0
        target = Path(output)
        partial = target.with_name(target.name + ".partial")
        count = entries = files = 0
        try:
            with partial.open("wb") as file:
                async for line in export_lines(store, session_id):
                    file.write(line)
                    if is_transcript_line(line):
                        entries += 1
                    elif is_attachment_line(line):
                        files += 1
                    else:
                        count += 1
                file.flush()
                os.fsync(file.fileno())
            # Only a complete export ever carries the name asked for.
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    with_files = f" and {files:,} files" if files else ""
    print(
        f"agentlog: exported {count:,} events and {entries:,} transcript entries{with_files} of "
        f"session {session_id!r} to {output}",
        file=sys.stderr,
    )
    return 0


async def run_import(
    settings: Settings,
    file: str,
    *,
    rename_to: str | None = None,
    out: TextIO | None = None,
    stdin: IO[bytes] | None = None,
) -> int:
    out = out or sys.stdout
    session = await asyncio.to_thread(read_export, file, rename_to, stdin)
    # A broken log is still imported (exactness first, e.g. to investigate it elsewhere),
    # but not silently.
    for problem in verify_session(session.as_recorded(), session_id=session.session_id):
        print(f"agentlog: warning: {problem}", file=sys.stderr)
    async with _open(settings, create=True, wakeups=True) as store:
        try:
            result = await import_session(store, session)
        except SessionAlreadyExists as exc:
            raise CommandError(f"{exc}; use --as NEW_ID to import a copy") from None
    out.write(
        f"agentlog: imported session {result.session_id!r}: {result.events:,} events "
        f"(seqs 1-{result.events:,}) at positions {result.first_position:,}-"
        f"{result.last_position:,} (seqs and times as exported; positions are this "
        f"database's), {result.transcript_entries:,} transcript entries\n"
    )
    return 0


def read_export(
    file: str, rename_to: str | None, stdin: IO[bytes] | None = None
) -> ImportedSession:
    if file == "-":
        return parse_export(stdin or sys.stdin.buffer, rename_to=rename_to)
    with Path(file).open("rb") as lines:
        return parse_export(lines, rename_to=rename_to)
