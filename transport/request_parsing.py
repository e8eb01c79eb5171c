"""Request bodies and query parameters, validated into precise 400s."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from transport.errors import ApiError

T = TypeVar("T")


async def read_body(request: web.Request, into: type[T], *, allow_empty: bool = False) -> T:
    raw = await request.read()  # aiohttp refuses bodies over client_max_size with 413
    if not raw.strip():
        if allow_empty:
            return msgspec.json.decode(b"{}", type=into)
        raise ApiError(400, "invalid_body", "the request needs a JSON body")
    try:
        return msgspec.json.decode(raw, type=into)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_body", f"the JSON body is not valid: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_body", f"the body is not JSON: {exc}") from None


def parse_offset(raw: str, source: str, head: int) -> int:
    """`offset` / `Last-Event-ID`: an integer from 0 to the session's head."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ApiError(
            400, "invalid_offset", f"{source} must be an integer seq, got {raw!r}", parameter=source
        ) from None
    if value < 0:
        raise ApiError(
            400, "invalid_offset", f"{source} must not be negative, got {value}", parameter=source
        )
    if value > head:
        raise ApiError(
            400,
            "invalid_offset",
            f"{source} {value} is beyond the session's head {head}",
            parameter=source,
            head=head,
        )
    return value


def parse_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"invalid_{name}", f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"invalid_{name}", f"{name} must be between {low} and {high}")
    return value


def parse_bool(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ApiError(400, f"invalid_{name}", f"{name} must be true or false, got {raw!r}")


def json_bytes(value: Any) -> bytes:
    return msgspec.json.encode(value)
