"""Configuration from the environment (and matching CLI flags), with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from domain.appending import DEFAULT_MAX_EVENT_BYTES
from infra.agent.config import AgentConfig
from infra.database_url import BadDatabaseUrl, parse_database_url


class ConfigError(ValueError):
    """A configuration value is malformed; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./agentlog.db"
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_body_bytes: int = 4 * 1024 * 1024
    api_token: str | None = None
    admin_token: str | None = None
    sse_keepalive_seconds: float = 15.0
    sse_write_timeout_seconds: float = 10.0
    sse_retry_ms: int = 1000
    idempotency_ttl_hours: float = 24.0
    # Sessions idle longer than this are deleted by the retention sweeper; None keeps them.
    retention_days: float | None = None
    agent: AgentConfig = field(default_factory=AgentConfig)

    def with_overrides(self, **overrides: Any) -> Settings:
        given = {k: v for k, v in overrides.items() if v is not None}
        return validate(replace(self, **given))


# (field, environment variable, parser)
ENVIRONMENT = [
    ("database_url", "AGENTLOG_DATABASE_URL", str),
    ("redis_url", "AGENTLOG_REDIS_URL", str),
    ("host", "AGENTLOG_HOST", str),
    ("port", "AGENTLOG_PORT", int),
    ("max_event_bytes", "AGENTLOG_MAX_EVENT_BYTES", int),
    ("max_body_bytes", "AGENTLOG_MAX_BODY_BYTES", int),
    ("api_token", "AGENTLOG_API_TOKEN", str),
    ("admin_token", "AGENTLOG_ADMIN_TOKEN", str),
    ("sse_keepalive_seconds", "AGENTLOG_SSE_KEEPALIVE_SECONDS", float),
    ("sse_write_timeout_seconds", "AGENTLOG_SSE_WRITE_TIMEOUT_SECONDS", float),
    ("sse_retry_ms", "AGENTLOG_SSE_RETRY_MS", int),
    ("idempotency_ttl_hours", "AGENTLOG_IDEMPOTENCY_TTL_HOURS", float),
    ("retention_days", "AGENTLOG_RETENTION_DAYS", float),
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
    ]:
        if not 0 < value <= 3600:
            raise ConfigError(f"{name}={value} must be between 0 and 3600 seconds")
    if not 0 <= settings.sse_retry_ms <= 600_000:
        raise ConfigError(f"AGENTLOG_SSE_RETRY_MS={settings.sse_retry_ms} must be 0-600000")
    if not settings.idempotency_ttl_hours > 0:
        raise ConfigError(
            f"AGENTLOG_IDEMPOTENCY_TTL_HOURS={settings.idempotency_ttl_hours:g} must be positive"
        )
    if settings.retention_days is not None and not settings.retention_days > 0:
        raise ConfigError(
            f"AGENTLOG_RETENTION_DAYS={settings.retention_days:g} must be positive "
            "(leave it unset to keep sessions)"
        )
    return settings


# The agent runner's variables, read by infra.agent.config.AgentConfig.from_env.
AGENT_ENVIRONMENT = [
    ("AGENTLOG_AGENT", "scripted"),
    ("AGENTLOG_HEARTBEAT_SECONDS", "15"),
    ("AGENTLOG_RUN_LOCK_TTL_SECONDS", "60"),
    ("AGENTLOG_DENY_TOOLS", "Agent.run_in_background"),
    ("AGENTLOG_ALLOWED_TOOLS", "Read,Glob,Grep,Bash,mcp__demo__add,mcp__demo__slow_op"),
    ("AGENTLOG_AGENT_MODEL", "None"),
    ("AGENTLOG_WORKSPACE_DIR", "None"),
]


def describe() -> list[tuple[str, str]]:
    """(variable, default) pairs, for the README's configuration table test."""
    defaults = Settings()
    by_name = {f.name: getattr(defaults, f.name) for f in fields(Settings)}
    ours = [(variable, str(by_name[name])) for name, variable, _ in ENVIRONMENT]
    return ours + AGENT_ENVIRONMENT
