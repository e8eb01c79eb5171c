"""Session tokens: signed, expiring, bound to one session and a scope, so a browser can hold one.

A token is `agl1.<payload>.<signature>`: the payload is base64url JSON `{"sid", "scope", "exp"}`
and the signature an HMAC-SHA256 over `agl1.<payload>` with a key derived from
AGENTLOG_TOKEN_SECRET (else the admin token, else the API token), so any process with the same
configuration verifies it; only revocations are stored (by token id: a hash of the signature,
`transport/http/tokens.py`). `read` opens the session's events, messages
and streams; `write` also its runs, events, approvals and cancels; `delete` also deleting the
session (a write token cannot: deleting is not undone). Changing the secret revokes every
token at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import msgspec

Scope = Literal["read", "write", "delete"]
SCOPES: tuple[Scope, ...] = ("read", "write", "delete")
# Each scope opens its methods and those of the scopes before it.
_METHODS: dict[Scope, frozenset[str]] = {
    "read": frozenset({"GET", "HEAD"}),
    "write": frozenset({"GET", "HEAD", "POST", "PUT", "PATCH"}),
    "delete": frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}),
}
PREFIX = "agl1"
MAX_TTL_SECONDS = 30 * 24 * 3600
_DERIVATION = b"agentlog session tokens v1"
_TTL = re.compile(r"\A([0-9]{1,7})([smhd]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenRejected(Exception):
    """The token is not valid: `code` is invalid_token or token_expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Payload(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    sid: str
    scope: Scope
    exp: int
    # A nonce: two tokens minted alike in the same second are still two tokens, with two ids
    # (their streams are counted, and they are revoked, apart). Older tokens have none.
    n: str = ""


@dataclass(frozen=True)
class SessionGrant:
    session_id: str
    scope: Scope
    expires_at: int  # unix seconds
    # Names the token without being it (a hash of its signature): for stream caps and logs.
    token_id: str = ""

    def allows(self, method: str) -> bool:
        return method in _METHODS[self.scope]


def signing_key(secret: str | None) -> bytes | None:
    if not secret:
        return None
    return hmac.new(secret.encode(), _DERIVATION, hashlib.sha256).digest()


def looks_like_session_token(token: str) -> bool:
    return token.startswith(PREFIX + ".")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def mint(
    key: bytes, session_id: str, scope: Scope, ttl_seconds: int, *, now: float | None = None
) -> tuple[str, int]:
    """(token, expires_at)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be read, write or delete, not {scope!r}")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"the ttl must be 1 s to {MAX_TTL_SECONDS // 86400} days")
    expires_at = int(now if now is not None else time.time()) + ttl_seconds
    nonce = secrets.token_urlsafe(9)
    payload = _b64(
        msgspec.json.encode(_Payload(sid=session_id, scope=scope, exp=expires_at, n=nonce))
    )
    signed = f"{PREFIX}.{payload}"
    return f"{signed}.{_signature(key, signed)}", expires_at


def verify(key: bytes, token: str, *, now: float | None = None) -> SessionGrant:
    """The grant a token carries; raises TokenRejected. The signature is checked (in constant
    time) before the payload is read, so a forged payload is never even decoded."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenRejected("invalid_token", "the token is not an agentlog session token")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_signature(key, signed).encode(), parts[2].encode()):
        raise TokenRejected("invalid_token", "the token's signature is not valid")
    try:
        payload = msgspec.json.decode(_unb64(parts[1]), type=_Payload)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise TokenRejected("invalid_token", "the token's payload is not valid") from None
    if payload.exp <= (now if now is not None else time.time()):
        raise TokenRejected("token_expired", "the token has expired; mint a new one")
    return SessionGrant(payload.sid, payload.scope, payload.exp, token_id_of(token))


def token_id_of(token: str) -> str:
    """A token's id: the first 128 bits of a SHA-256 of its signature, in hex. Knowing the id
    does not let anyone make the token."""
    return hashlib.sha256(token.rpartition(".")[2].encode()).hexdigest()[:32]


def parse_ttl(text: str) -> int:
    """`90`, `90s`, `15m`, `1h`, `7d` -> seconds; raises ValueError."""
    match = _TTL.match(text.strip())
    if match is None:
        raise ValueError(f"ttl {text!r} is not a duration like 90s, 15m, 1h or 7d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 1 <= seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl {text!r} must be 1 s to {MAX_TTL_SECONDS // 86400} days")
    return seconds
