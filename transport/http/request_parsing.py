"""Request bodies and query parameters, validated into precise 400s."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from agentlog.transport.middleware.errors import ApiError

T = TypeVar("T")

# One decoder per body type, made on first use: `msgspec.json.decode(raw, type=...)` looks the
# type up again on every call (a third of the decode of an append's body).
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(into: type[T]) -> msgspec.json.Decoder[T]:
    decoder = _DECODERS.get(into)
    if decoder is None:
        decoder = _DECODERS[into] = msgspec.json.Decoder(into)
    return decoder


async def read_body(request: web.Request, into: type[T], *, allow_empty: bool = False) -> T:
    raw = await request.read()  # aiohttp refuses bodies over client_max_size with 413
    if not raw.strip():
        if allow_empty:
            return _decoder(into).decode(b"{}")
        raise ApiError(400, "invalid_body", "the request needs a JSON body")
    try:
        return _decoder(into).decode(raw)
    except RecursionError:
        # msgspec decodes nested values recursively; a body nested ~1,000 levels deep is an
        # attack or a bug, never a request, and must not become a 500.
        raise ApiError(400, "invalid_body", "the JSON body is nested too deeply") from None
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_body", f"the JSON body is not valid: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_body", f"the body is not JSON: {exc}") from None


# Plain ASCII digits only: int() would also take "+1", " 1", "1_0" and other scripts' digits.
DIGITS = re.compile(r"[0-9]{1,19}")


def _digits(raw: str) -> int | None:
    return int(raw) if DIGITS.fullmatch(raw) else None


def parse_offset(raw: str, source: str, head: int) -> int:
    """`offset` / `Last-Event-ID`: plain digits, from 0 to the session's head."""
    value = _digits(raw.strip() if source == "Last-Event-ID" else raw)
    if value is None:
        raise ApiError(
            400,
            "invalid_offset",
            f"{source} must be a seq written in plain digits, got {raw[:40]!r}",
            parameter=source,
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
    value = _digits(raw)
    if value is None:
        raise ApiError(
            400, f"invalid_{name}", f"{name} must be an integer in plain digits, got {raw[:40]!r}"
        )
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
