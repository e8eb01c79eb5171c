"""The `agentlog` command: serve, migrate (and the operator commands of later issues)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agentlog.domain.errors import AgentlogError
from agentlog.infra.store.database_url import DatabaseInUse
from agentlog.infra.store.opening import open_store, parse_database_url
from agentlog.transport.cli import inspect as cli_inspect
from agentlog.transport.cli.rebuild import add_rebuild_command, run_rebuild
from agentlog.transport.cli.workers import default_workers, parse_worker_of, supervise
from agentlog.transport.event_loop import EventLoop, EventLoopUnavailable, choose_event_loop
from agentlog.transport.logging_setup import configure_logging
from agentlog.transport.middleware.auth import token_secret
from agentlog.transport.middleware.browser_guard import is_loopback
from agentlog.transport.middleware.session_tokens import (
    Scope,
    mint,
    parse_ttl,
    signing_key,
    token_id_of,
)
from agentlog.transport.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from agentlog.infra.agent.agents.catalog import AgentCatalog


def _parser() -> argparse.ArgumentParser:
    parser = cli_inspect.OneLineArgumentParser(
        prog="agentlog",
        description="Event-sourced log for AI-agent chat sessions.",
    )
    parser.add_argument(
        "--database-url", help="sqlite:///path or postgresql://... (AGENTLOG_DATABASE_URL)"
    )
    parser.add_argument("--redis-url", help="redis://host:port/db (AGENTLOG_REDIS_URL)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (AGENTLOG_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (AGENTLOG_PORT, default 8080)")
    serve.add_argument(
        "--agent",
        metavar="MODULE:ATTRIBUTE",
        help="the default agent: a ClaudeAgentOptions, or a function of the run's context "
        "returning one (AGENTLOG_AGENT; more agents: AGENTLOG_AGENTS=name=module:attribute,...)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="processes serving the port (AGENTLOG_WORKERS; default: the number of cores on "
        "PostgreSQL, 1 on SQLite, which one process serves)",
    )
    # Set by the supervisor on the workers it starts (transport/cli/workers.py).
    serve.add_argument("--worker-of", help=argparse.SUPPRESS)
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="serve on a non-loopback address without AGENTLOG_API_TOKEN (anyone who can reach "
        "it can use every session)",
    )

    commands.add_parser("migrate", help="create or update the database schema")
    token = commands.add_parser(
        "token", help="mint a signed, expiring token for one session (for a browser front end)"
    )
    token.add_argument("--session", required=True, dest="token_session", help="the session id")
    token.add_argument("--scope", choices=["read", "write", "delete"], default="read")
    token.add_argument("--ttl", default="1h", help="how long it is valid: 90s, 15m, 1h, 7d")
    cli_inspect.add_commands(commands)
    add_rebuild_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(given)
    environ = dict(os.environ)
    if getattr(args, "agent", None):
        environ["AGENTLOG_AGENT"] = args.agent  # the flag stands for the variable
    try:
        settings = load_settings(environ).with_overrides(
            database_url=args.database_url,
            redis_url=args.redis_url,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
        )
        if args.command == "serve":
            if args.worker_of is not None:
                return serve_as_worker(settings, parse_worker_of(args.worker_of))
            return serve(settings, insecure=args.insecure, argv=given)
        if args.command == "token":
            return mint_token(settings, args.token_session, args.scope, args.ttl)
        if args.command == "migrate":
            return asyncio.run(migrate(settings))
        if args.command == "rebuild":
            return asyncio.run(run_rebuild(settings, args.session_id))
        if args.command in cli_inspect.COMMANDS:
            return cli_inspect.run_command(settings, args)
    except ConfigError as exc:
        print(f"agentlog: configuration error: {exc}", file=sys.stderr)
        return 2
    except (AgentlogError, OSError) as exc:
        print(f"agentlog: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback
        print(f"agentlog: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command}")


def unusable_sandbox(settings: Settings) -> str | None:
    """Why no agent run can start here (the sandbox is on and cannot work), in one line."""
    from agentlog.infra.agent.sandbox.bubblewrap import SandboxUnavailable, sandbox_problem

    problem = sandbox_problem() if settings.agent.sandbox else None
    if problem is None:
        return None
    why = " ".join(str(SandboxUnavailable(problem)).split())
    return f"agent runs cannot start here: {why}"


def sandbox_weaknesses(settings: Settings) -> list[str]:
    """What the sandbox, on and working, cannot do on this kernel (one line each)."""
    from agentlog.infra.agent.sandbox.bubblewrap import sandbox_weaknesses

    return list(sandbox_weaknesses()) if settings.agent.sandbox else []


def _load_agents(settings: Settings) -> AgentCatalog:
    from agentlog.infra.agent.agents.catalog import AgentLoadError, load_catalog_sync

    # Every agent is imported and checked now: a bad setting stops the start, never a run.
    try:
        return load_catalog_sync(settings.agent.agents, settings.agent.disabled_tools)
    except AgentLoadError as exc:
        raise ConfigError(str(exc)) from None


def serve(settings: Settings, *, insecure: bool = False, argv: Sequence[str] = ()) -> int:
    refusal = unsafe_bind(settings, insecure=insecure)
    if refusal is not None:
        print(f"agentlog: {refusal}", file=sys.stderr)
        return 2
    agents = _load_agents(settings)
    loop = _event_loop(settings)
    configure_logging(settings.log_level.upper())
    url = parse_database_url(settings.database_url)
    workers = settings.workers or default_workers(url.serves_one_process)
    if workers > 1 and url.serves_one_process:
        print(
            f"agentlog: --workers {workers} needs a database several processes share "
            f"(PostgreSQL): {url.describe()} is served by one process, which keeps its run "
            "lock and wake-ups in memory; serve it with --workers 1",
            file=sys.stderr,
        )
        return 2
    if workers > 1:
        _announce(settings, url.describe(), workers, loop)
        return supervise(argv, workers)
    try:
        with url.serving_claim():
            _announce(settings, url.describe(), 1, loop)
            return _serve_here(settings, agents, loop)
    except DatabaseInUse as exc:
        print(f"agentlog: {exc}", file=sys.stderr)
        return 2


def serve_as_worker(settings: Settings, worker_of: tuple[int, int]) -> int:
    """One of `--workers N` (the supervisor checked the configuration and announced it)."""
    agents = _load_agents(settings)
    loop = _event_loop(settings)
    configure_logging(settings.log_level.upper())
    return _serve_here(settings, agents, loop, worker_of=worker_of)


def _event_loop(settings: Settings) -> EventLoop:
    # Chosen before anything starts: a loop that cannot be imported stops the start, as a
    # malformed setting does.
    try:
        return choose_event_loop(settings.event_loop)
    except EventLoopUnavailable as exc:
        raise ConfigError(str(exc)) from None


def _announce(settings: Settings, database: str, workers: int, loop: EventLoop) -> None:
    processes = f", {workers} workers" if workers > 1 else ""
    print(
        f"agentlog serving on http://{settings.host}:{settings.port} ({database}{processes}, "
        f"event loop {loop.name})",
        flush=True,
    )
    sandbox_warning = unusable_sandbox(settings)
    if sandbox_warning is not None:
        print(f"agentlog: warning: {sandbox_warning}", file=sys.stderr, flush=True)
    else:
        for weakness in sandbox_weaknesses(settings):
            print(f"agentlog: warning: {weakness}", file=sys.stderr, flush=True)
    if not settings.api_token:
        print(
            "agentlog: warning: no AGENTLOG_API_TOKEN: every /v1 route (sessions, events, runs, "
            "admin) is open to anything that can reach this address",
            file=sys.stderr,
            flush=True,
        )


def _serve_here(
    settings: Settings,
    agents: AgentCatalog,
    loop: EventLoop,
    worker_of: tuple[int, int] | None = None,
) -> int:
    from agentlog.transport.app import create_app
    from agentlog.transport.cli.open_files import fit_open_files
    from agentlog.transport.http_server import run
    from agentlog.transport.middleware.access_log import AccessLog

    files = fit_open_files(settings.max_sse_connections)
    if files.warning is not None:
        print(f"agentlog: warning: {files.warning}", file=sys.stderr, flush=True)
        settings = replace(settings, max_sse_connections=files.max_streams)
    run(
        create_app(settings, agents=agents, worker_of=worker_of),
        settings.host,
        settings.port,
        max_header_bytes=settings.max_header_bytes,
        access_log_class=AccessLog,
        shutdown_seconds=settings.shutdown_seconds,
        reuse_port=worker_of is not None,
        new_loop=loop.new_loop,
    )
    return 0


def unsafe_bind(settings: Settings, *, insecure: bool) -> str | None:
    """Why `serve` must not start: a non-loopback address with no token, unless --insecure."""
    if settings.api_token or insecure or is_loopback(settings.host.strip("[]")):
        return None
    return (
        f"refusing to serve on {settings.host} without AGENTLOG_API_TOKEN: anyone who can "
        "reach it could use every session. Set AGENTLOG_API_TOKEN, bind 127.0.0.1, or pass "
        "--insecure"
    )


def mint_token(settings: Settings, session_id: str, scope: Scope, ttl: str) -> int:
    """Print a session token on stdout (its expiry and id on stderr). Signed with the server's
    secret from the same environment; the server needs no call and keeps nothing."""
    try:
        seconds = parse_ttl(ttl)
    except ValueError as exc:
        raise ConfigError(f"--ttl: {exc}") from None
    key = signing_key(token_secret(settings))
    if key is None:
        raise ConfigError(
            "session tokens need a signing secret: set AGENTLOG_TOKEN_SECRET (or "
            "AGENTLOG_ADMIN_TOKEN / AGENTLOG_API_TOKEN) as the server has it"
        )
    token, expires_at = mint(key, session_id, scope, seconds)
    print(token)
    expiry = datetime.fromtimestamp(expires_at, UTC).isoformat()
    print(
        f"agentlog: {scope} token for session {session_id}, valid until {expiry}, id "
        f"{token_id_of(token)} (to revoke it: DELETE /v1/admin/tokens/<id>)",
        file=sys.stderr,
    )
    return 0


async def migrate(settings: Settings) -> int:
    # Opening a store creates its schema (idempotent).
    async with open_store(settings.database_url, redis_url=settings.redis_url):
        pass
    print("agentlog: schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
