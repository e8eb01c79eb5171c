"""Minting session tokens over HTTP: `POST /v1/admin/tokens` (the operator, any session) and
`POST /v1/sessions/{id}/tokens` (a holder of the API token, e.g. a front end's backend or the
live page, which already may read every session). A session token never mints another.
`DELETE /v1/admin/tokens/{token_id}` revokes one: recorded in the database, so every instance
refuses it, and its open streams end (here at once, elsewhere within seconds)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from agentlog.infra.sessions.tombstone import live_head
from agentlog.transport.http.request_parsing import read_body
from agentlog.transport.http.sessions import json_response
from agentlog.transport.keys import SETTINGS, STORE
from agentlog.transport.middleware.auth import token_secret
from agentlog.transport.middleware.errors import ApiError
from agentlog.transport.middleware.limits import LIMITS
from agentlog.transport.middleware.session_tokens import (
    MAX_TTL_SECONDS,
    Scope,
    mint,
    signing_key,
    token_id_of,
)
from agentlog.transport.openapi.fragments import (
    SESSION_ID,
    returns_json,
    takes_json,
)

DEFAULT_TTL_SECONDS = 3600
TOKEN_ID = re.compile(r"[0-9a-f]{32}")


class MintBody(msgspec.Struct, forbid_unknown_fields=True):
    scope: Scope = "read"
    # A float so `3600.0` is taken, as JSON Schema's "integer" does; a fraction is a 400.
    ttl_seconds: float = DEFAULT_TTL_SECONDS


class AdminMintBody(MintBody, forbid_unknown_fields=True):
    session_id: str = ""


async def _mint(request: web.Request, session_id: str, body: MintBody) -> web.Response:
    if not 1 <= body.ttl_seconds <= MAX_TTL_SECONDS or body.ttl_seconds != int(body.ttl_seconds):
        raise ApiError(400, "invalid_ttl", f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
    key = signing_key(token_secret(request.app[SETTINGS]))
    if key is None:
        raise ApiError(
            503,
            "tokens_not_configured",
            "set AGENTLOG_TOKEN_SECRET (or AGENTLOG_ADMIN_TOKEN / AGENTLOG_API_TOKEN) to sign "
            "session tokens",
        )
    await live_head(request.app[STORE], session_id)  # 404 for an unknown session
    token, expires_at = mint(key, session_id, body.scope, int(body.ttl_seconds))
    return json_response(
        {
            "token": token,
            "token_id": token_id_of(token),
            "session_id": session_id,
            "scope": body.scope,
            "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat(),
        },
        201,
    )


async def mint_for_session(request: web.Request) -> web.Response:
    body = await read_body(request, MintBody, allow_empty=True)
    return await _mint(request, request.match_info["session_id"], body)


async def mint_admin(request: web.Request) -> web.Response:
    body = await read_body(request, AdminMintBody)
    if not body.session_id:
        raise ApiError(400, "invalid_body", "session_id is required")
    return await _mint(request, body.session_id, body)


async def revoke_token(request: web.Request) -> web.Response:
    token_id = request.match_info["token_id"]
    if not TOKEN_ID.fullmatch(token_id):
        raise ApiError(
            400, "invalid_token_id", "a token id is the 32 hex digits `token_id` of its minting"
        )
    # The id says nothing of the token's expiry: kept for the longest a token can live.
    await (
        request.app[STORE]
        .backend.token_revocations()
        .revoke(token_id, int(time.time()) + MAX_TTL_SECONDS)
    )
    request.app[LIMITS].end_streams_of({token_id})
    return json_response({"token_id": token_id, "revoked": True})


def add_routes(app: web.Application) -> None:
    """Only where tokens can be signed: without a secret the routes do not exist (404)."""
    if token_secret(app[SETTINGS]) is None:
        return
    app.router.add_post("/v1/admin/tokens", mint_admin)
    app.router.add_delete("/v1/admin/tokens/{token_id}", revoke_token)
    app.router.add_post("/v1/sessions/{session_id}/tokens", mint_for_session)


_MINTED = returns_json(
    "the token, for `Authorization: Bearer` (and `?access_token=` when read)",
    {
        "type": "object",
        "required": ["token", "token_id", "session_id", "scope", "expires_at"],
        "properties": {
            "token": {"type": "string"},
            "token_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "session_id": {"type": "string"},
            "scope": {"enum": ["read", "write", "delete"]},
            "expires_at": {"type": "string", "format": "date-time"},
        },
    },
)
_SCOPE_TTL = {
    "scope": {"enum": ["read", "write", "delete"], "default": "read"},
    "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_TTL_SECONDS},
}
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/admin/tokens": {
        "post": {
            "summary": "Mint a signed, expiring token for one session and a scope",
            "requestBody": takes_json(
                {
                    "type": "object",
                    "required": ["session_id"],
                    "properties": {
                        "session_id": {"type": "string", "minLength": 1},
                        **_SCOPE_TTL,
                    },
                    "additionalProperties": False,
                }
            ),
            "responses": {"201": _MINTED},
        }
    },
    "/v1/admin/tokens/{token_id}": {
        "delete": {
            "summary": "Revoke a session token by its id: every instance refuses it, and its "
            "streams end",
            "parameters": [
                {
                    "name": "token_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                }
            ],
            "responses": {
                "200": returns_json(
                    "revoked",
                    {
                        "type": "object",
                        "required": ["token_id", "revoked"],
                        "properties": {
                            "token_id": {"type": "string"},
                            "revoked": {"type": "boolean"},
                        },
                    },
                )
            },
        }
    },
    "/v1/sessions/{session_id}/tokens": {
        "post": {
            "summary": "Mint a token for this session (needs the API token)",
            "parameters": [SESSION_ID],
            "requestBody": takes_json(
                {
                    "type": "object",
                    "properties": _SCOPE_TTL,
                    "additionalProperties": False,
                }
            ),
            "responses": {"201": _MINTED},
        }
    },
}
