"""Configuration from the environment (and matching CLI flags), with clear errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from agentlog.domain.rules.appending import DEFAULT_MAX_EVENT_BYTES
from agentlog.domain.rules.attachments import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_MESSAGE_FILE_BYTES,
    FileLimits,
)
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.store.byte_bounded import DEFAULT_CACHE_BYTES
from agentlog.infra.store.database_url import BadDatabaseUrl
from agentlog.infra.store.opening import parse_database_url
from agentlog.transport.event_loop import EVENT_LOOPS


class ConfigError(ValueError):
    """A configuration value is malformed; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./agentlog.db"
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Processes `agentlog serve` runs on the port (None: the cores on a shared database, 1 on
    # a SQLite file, which one process serves).
    workers: int | None = None
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_body_bytes: int = 4 * 1024 * 1024
    # Files sent with a prompt (decoded bytes): each one, and one message's together.
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_message_file_bytes: int = DEFAULT_MAX_MESSAGE_FILE_BYTES
    api_token: str | None = None
    admin_token: str | None = None
    sse_keepalive_seconds: float = 15.0
    sse_write_timeout_seconds: float = 10.0
    sse_retry_ms: int = 1000
    # Browser protections (transport/middleware/browser_guard.py): origins that may call the API
    # from a
    # page of their own (CORS), and host names the server answers to besides loopback.
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    # Signs session tokens; derived from the admin or API token when unset.
    token_secret: str | None = None
    max_active_runs: int = 8
    # Twice the 2,000 subscribers one process fans out to at 50 events/s (docs/benchmarks.md):
    # a limit on memory (~18 KB an idle stream), not on throughput. `serve` raises its open-files
    # limit to fit them (transport/cli/open_files.py).
    max_sse_connections: int = 4000
    # Open streams one session token may hold, and all session tokens of one session together:
    # so one token cannot fill every slot of max_sse_connections.
    max_streams_per_token: int = 4
    max_streams_per_session: int = 16
    max_header_bytes: int = 8190
    log_level: str = "info"
    idempotency_ttl_hours: float = 24.0
    # Sessions idle longer than this are deleted by the retention sweeper; None keeps them.
    retention_days: float | None = None
    db_timeout_seconds: float = 5.0
    # What the process's caches and rings may hold together (agentlog.infra.store.byte_bounded).
    cache_bytes: int = DEFAULT_CACHE_BYTES
    # SIGTERM to exit, whatever the database does (transport/http_server.py).
    shutdown_seconds: float = 30.0
    # The event loop `serve` runs on (transport/event_loop.py): auto, uvloop or asyncio.
    event_loop: str = "auto"
    agent: AgentConfig = field(default_factory=AgentConfig)

    @property
    def file_limits(self) -> FileLimits:
        return FileLimits(
            max_file_bytes=self.max_file_bytes, max_message_bytes=self.max_message_file_bytes
        )

    def with_overrides(self, **overrides: Any) -> Settings:
        given = {k: v for k, v in overrides.items() if v is not None}
        return validate(replace(self, **given))


def _names(raw: str) -> tuple[str, ...]:
    """A comma-separated list; `_names.__name__` names it in errors."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_names.__name__ = "comma-separated list"

# (field, environment variable, parser: its `__name__` says what a valid value is)
ENVIRONMENT: list[tuple[str, str, Callable[[str], Any]]] = [
    ("database_url", "AGENTLOG_DATABASE_URL", str),
    ("redis_url", "AGENTLOG_REDIS_URL", str),
    ("host", "AGENTLOG_HOST", str),
    ("port", "AGENTLOG_PORT", int),
    ("workers", "AGENTLOG_WORKERS", int),
    ("max_event_bytes", "AGENTLOG_MAX_EVENT_BYTES", int),
    ("max_body_bytes", "AGENTLOG_MAX_BODY_BYTES", int),
    ("max_file_bytes", "AGENTLOG_MAX_FILE_BYTES", int),
    ("max_message_file_bytes", "AGENTLOG_MAX_MESSAGE_FILE_BYTES", int),
    ("api_token", "AGENTLOG_API_TOKEN", str),
    ("admin_token", "AGENTLOG_ADMIN_TOKEN", str),
    ("sse_keepalive_seconds", "AGENTLOG_SSE_KEEPALIVE_SECONDS", float),
    ("sse_write_timeout_seconds", "AGENTLOG_SSE_WRITE_TIMEOUT_SECONDS", float),
    ("sse_retry_ms", "AGENTLOG_SSE_RETRY_MS", int),
    ("allowed_origins", "AGENTLOG_ALLOWED_ORIGINS", _names),
    ("allowed_hosts", "AGENTLOG_ALLOWED_HOSTS", _names),
    ("token_secret", "AGENTLOG_TOKEN_SECRET", str),
    ("max_active_runs", "AGENTLOG_MAX_ACTIVE_RUNS", int),
    ("max_sse_connections", "AGENTLOG_MAX_SSE_CONNECTIONS", int),
    ("max_streams_per_token", "AGENTLOG_MAX_STREAMS_PER_TOKEN", int),
    ("max_streams_per_session", "AGENTLOG_MAX_STREAMS_PER_SESSION", int),
    ("max_header_bytes", "AGENTLOG_MAX_HEADER_BYTES", int),
    ("log_level", "AGENTLOG_LOG_LEVEL", str),
    ("idempotency_ttl_hours", "AGENTLOG_IDEMPOTENCY_TTL_HOURS", float),
    ("retention_days", "AGENTLOG_RETENTION_DAYS", float),
    ("db_timeout_seconds", "AGENTLOG_DB_TIMEOUT_SECONDS", float),
    ("cache_bytes", "AGENTLOG_CACHE_BYTES", int),
    ("shutdown_seconds", "AGENTLOG_SHUTDOWN_SECONDS", float),
    ("event_loop", "AGENTLOG_EVENT_LOOP", str),
]


def load_settings(environ: Mapping[str, str]) -> Settings:
    values: dict[str, Any] = {}
    for name, variable, parse in ENVIRONMENT:
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError:
            raise ConfigError(f"{variable}={raw!r} is not a valid {parse.__name__}") from None
    try:
        values["agent"] = AgentConfig.from_env(environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return validate(Settings(**values))


def validate(settings: Settings) -> Settings:
    try:
        parse_database_url(settings.database_url)
    except BadDatabaseUrl as exc:
        raise ConfigError(f"AGENTLOG_DATABASE_URL: {exc}") from None
    if settings.redis_url is not None and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(
            f"AGENTLOG_REDIS_URL={settings.redis_url!r} must start with redis://, rediss:// "
            "or unix://"
        )
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"AGENTLOG_PORT={settings.port} is not a port number (0-65535)")
    if settings.workers is not None and not 1 <= settings.workers <= 256:
        raise ConfigError(f"AGENTLOG_WORKERS={settings.workers} must be from 1 to 256")
    if not settings.host:
        raise ConfigError("AGENTLOG_HOST is empty")
    if settings.max_event_bytes < 1024:
        raise ConfigError(
            f"AGENTLOG_MAX_EVENT_BYTES={settings.max_event_bytes} is below the minimum of 1024"
        )
    if settings.max_body_bytes < 1024:
        raise ConfigError(
            f"AGENTLOG_MAX_BODY_BYTES={settings.max_body_bytes} is below the minimum of 1024"
        )
    for name, value in [
        ("AGENTLOG_SSE_KEEPALIVE_SECONDS", settings.sse_keepalive_seconds),
        ("AGENTLOG_SSE_WRITE_TIMEOUT_SECONDS", settings.sse_write_timeout_seconds),
        ("AGENTLOG_DB_TIMEOUT_SECONDS", settings.db_timeout_seconds),
        ("AGENTLOG_SHUTDOWN_SECONDS", settings.shutdown_seconds),
    ]:
        if not 0 < value <= 3600:
            raise ConfigError(f"{name}={value} must be between 0 and 3600 seconds")
    if not 0 <= settings.sse_retry_ms <= 600_000:
        raise ConfigError(f"AGENTLOG_SSE_RETRY_MS={settings.sse_retry_ms} must be 0-600000")
    for origin in settings.allowed_origins:
        if not ORIGIN.match(origin):
            raise ConfigError(
                f"AGENTLOG_ALLOWED_ORIGINS: {origin!r} is not an origin like "
                "https://app.example.com or http://localhost:3000 (scheme, host, optional port; "
                "no path)"
            )
    for host in settings.allowed_hosts:
        if not HOST_NAME.match(host):
            raise ConfigError(
                f"AGENTLOG_ALLOWED_HOSTS: {host!r} is not a host name like agentlog.example.com"
            )
    for name, value in [
        ("AGENTLOG_MAX_ACTIVE_RUNS", settings.max_active_runs),
        ("AGENTLOG_MAX_SSE_CONNECTIONS", settings.max_sse_connections),
        ("AGENTLOG_MAX_STREAMS_PER_TOKEN", settings.max_streams_per_token),
        ("AGENTLOG_MAX_STREAMS_PER_SESSION", settings.max_streams_per_session),
        ("AGENTLOG_MAX_FILE_BYTES", settings.max_file_bytes),
        ("AGENTLOG_MAX_MESSAGE_FILE_BYTES", settings.max_message_file_bytes),
    ]:
        if value < 1:
            raise ConfigError(f"{name}={value} must be at least 1")
    if not 1024 <= settings.max_header_bytes <= 1024 * 1024:
        raise ConfigError(
            f"AGENTLOG_MAX_HEADER_BYTES={settings.max_header_bytes} must be 1024-1048576"
        )
    if settings.event_loop not in EVENT_LOOPS:
        raise ConfigError(
            f"AGENTLOG_EVENT_LOOP={settings.event_loop!r} must be one of {', '.join(EVENT_LOOPS)}"
        )
    if settings.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(
            f"AGENTLOG_LOG_LEVEL={settings.log_level!r} must be one of {', '.join(LOG_LEVELS)}"
        )
    if not settings.idempotency_ttl_hours > 0:
        raise ConfigError(
            f"AGENTLOG_IDEMPOTENCY_TTL_HOURS={settings.idempotency_ttl_hours:g} must be positive"
        )
    if settings.cache_bytes < 1024 * 1024:
        raise ConfigError(
            f"AGENTLOG_CACHE_BYTES={settings.cache_bytes} is below the minimum of 1048576 (1 MiB)"
        )
    if settings.retention_days is not None and not settings.retention_days > 0:
        raise ConfigError(
            f"AGENTLOG_RETENTION_DAYS={settings.retention_days:g} must be positive "
            "(leave it unset to keep sessions)"
        )
    return settings


ORIGIN = re.compile(
    r"\Ahttps?://[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z|\Ahttps?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?\Z"
)
HOST_NAME = re.compile(r"\A[A-Za-z0-9.-]+\Z|\A\[[0-9A-Fa-f:.]+\]\Z")
LOG_LEVELS = ("debug", "info", "warning", "error")


# The agent runner's variables, read by agentlog.infra.agent.config.AgentConfig.from_env.
AGENT_ENVIRONMENT = [
    ("AGENTLOG_AGENT", "scripted"),
    ("AGENTLOG_AGENTS", "None"),
    ("AGENTLOG_HEARTBEAT_SECONDS", "15"),
    ("AGENTLOG_RUN_LOCK_TTL_SECONDS", "8"),
    ("AGENTLOG_DENY_TOOLS", "Agent.run_in_background"),
    (
        "AGENTLOG_ALLOWED_TOOLS",
        "Read,Glob,Grep,mcp__demo__add,mcp__demo__slow_op,mcp__demo__publish",
    ),
    ("AGENTLOG_ENABLE_TOOLS", "None"),
    ("AGENTLOG_SANDBOX", "on"),
    ("AGENTLOG_AGENT_EGRESS", "None"),
    ("AGENTLOG_RUN_MEMORY_MB", "2048"),
    ("AGENTLOG_RUN_PROCESSES", "256"),
    ("AGENTLOG_RUN_CPU_SECONDS", "600"),
    ("AGENTLOG_RUN_FILE_MB", "1024"),
    ("AGENTLOG_RUN_WORKSPACE_MB", "2048"),
    ("AGENTLOG_APPROVE_TOOLS", "Bash;Write;Edit;MultiEdit;NotebookEdit;mcp__demo__publish"),
    ("AGENTLOG_APPROVAL_GRACE_SECONDS", "3"),
    ("AGENTLOG_CONTINUE_AFTER_CRASH", "on"),
    ("AGENTLOG_MAX_CONTINUATIONS", "2"),
    ("AGENTLOG_NO_RETRY_TOOLS", "None"),
    ("AGENTLOG_AGENT_MODEL", "None"),
    ("AGENTLOG_WORKSPACE_DIR", "None"),
]


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) if value else "None"
    return str(value)


def describe() -> list[tuple[str, str]]:
    """(variable, default) pairs, for the configuration table's test (docs/configuration.md)."""
    defaults = Settings()
    by_name = {f.name: getattr(defaults, f.name) for f in fields(Settings)}
    ours = [(variable, _shown(by_name[name])) for name, variable, _ in ENVIRONMENT]
    return ours + AGENT_ENVIRONMENT
