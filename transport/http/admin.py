"""The operator's HTTP views: the global feed in commit order and the sessions list with status.

`GET /v1/admin/events?after=P&type=T&session=S&limit=N` reads the log by position, the order
in which events committed across every session. With filters, a page may hold fewer than
`limit` events: `next_after` is the last position *scanned*, not the last one returned, so
the next request continues exactly where this one stopped reading and nothing is skipped or
read twice. A request reads at most MAX_SCAN events, so a filter matching nothing in a long
log answers quickly (with an empty page and a `next_after` to continue from).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agentlog.domain.events import EVENT_TYPES, RecordedEvent, encode_recorded
from agentlog.infra.sessions.status import summary_json
from agentlog.transport.http.request_parsing import json_bytes, parse_int
from agentlog.transport.keys import PROJECTOR, STORE
from agentlog.transport.middleware.errors import ApiError
from agentlog.transport.openapi.fragments import (
    returns_error,
    returns_json,
)

MAX_LIMIT = 5000
MAX_SCAN = 50_000
SCAN_PAGE = 2000
MAX_POSITION = 2**63 - 1


def parse_types(request: web.Request) -> frozenset[str]:
    """`type` is repeatable (`type=a&type=b`) and may hold a comma-separated list."""
    types = {t.strip() for value in request.query.getall("type", []) for t in value.split(",")} - {
        ""
    }
    unknown = sorted(types - EVENT_TYPES.keys())
    if unknown:
        raise ApiError(
            400,
            "invalid_type",
            f"unknown event type {unknown[0]!r}",
            known_types=sorted(EVENT_TYPES),
        )
    return frozenset(types)


async def admin_events(request: web.Request) -> web.Response:
    """GET /v1/admin/events: `{"events": [...], "next_after": P, "last_position": L}`."""
    after = parse_int(request, "after", 0, 0, MAX_POSITION)
    limit = parse_int(request, "limit", 100, 1, MAX_LIMIT)
    types = parse_types(request)
    session_id = request.query.get("session")
    if session_id == "":
        raise ApiError(400, "invalid_session", "session must not be empty")
    store = request.app[STORE]
    filtering = bool(types) or session_id is not None
    found: list[RecordedEvent] = []
    scanned_to = after
    scanned = 0
    while len(found) < limit and scanned < MAX_SCAN:
        asked = min(SCAN_PAGE, MAX_SCAN - scanned) if filtering else limit - len(found)
        page = await store.read_all(after=scanned_to, limit=asked)
        for recorded in page:
            scanned_to = recorded.position
            scanned += 1
            if (not types or recorded.type in types) and (
                session_id is None or recorded.session_id == session_id
            ):
                found.append(recorded)
                if len(found) == limit:
                    break  # the rest of the page is not scanned: the next request reads it
        if len(page) < asked:
            break  # the end of the log
    # Read after the scan, so it is never below next_after.
    last_position = max(await store.last_position(), scanned_to)
    body = b'{"events":[%s],"next_after":%d,"last_position":%d}' % (
        b",".join(encode_recorded(e) for e in found),
        scanned_to,
        last_position,
    )
    return web.Response(body=body, content_type="application/json")


async def list_sessions_with_status(request: web.Request) -> web.Response:
    """GET /v1/sessions: `{"sessions": [{id, title, status, head, runs, ...}], "next_after"}`,
    in id order; pass `next_after` as `after` for the next page."""
    limit = parse_int(request, "limit", 100, 1, 1000)
    after = request.query.get("after")
    summaries = await request.app[PROJECTOR].list_summaries(after, limit)
    next_after = summaries[-1].session_id if len(summaries) == limit else None
    return web.Response(
        body=json_bytes(
            {
                # Deleted sessions leave only a tombstone: not listed (paging still counts them).
                "sessions": [summary_json(s) for s in summaries if s.status != "deleted"],
                "next_after": next_after,
            }
        ),
        content_type="application/json",
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/admin/events", admin_events)


# For agentlog.transport.openapi.document's ALL_PATHS (the document lists only the routes an app
# registers).
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/admin/events": {
        "get": {
            "summary": "The global feed: every session's events in commit (position) order",
            "parameters": [
                {
                    "name": "after",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Start after this position (a page's next_after).",
                },
                {
                    "name": "type",
                    "in": "query",
                    "schema": {"type": "array", "items": {"enum": sorted(EVENT_TYPES)}},
                    "style": "form",
                    "explode": True,
                    "description": "Only these event types (repeatable or comma-separated).",
                },
                {"name": "session", "in": "query", "schema": {"type": "string", "minLength": 1}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
            ],
            "responses": {
                "200": returns_json(
                    "A page; next_after is the last position scanned",
                    {
                        "type": "object",
                        "required": ["events", "next_after", "last_position"],
                        "properties": {
                            "events": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Event"},
                            },
                            "next_after": {"type": "integer"},
                            "last_position": {"type": "integer"},
                        },
                    },
                ),
                "400": returns_error("a bad parameter"),
            },
        }
    }
}
