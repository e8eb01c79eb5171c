"""Files sent with prompts: read from a start's body, stored in the session before its run
starts, and served back by `GET /v1/sessions/{id}/files/{sha256}`.

A start carries files as the AI SDK's `file` parts: in `POST /v1/chat` (and the `messages` of
`POST /runs`) the last user message's parts, in a `{"prompt"}` body of `POST /runs` the list
`files`. Each is a `data:` URL (agentlog.domain.rules.attachments), or the URL this server gave
a file of the same session (`/v1/sessions/{id}/files/{sha256}`, as GET /messages shows it),
which an edit of that message sends back. The route serves a file only through the session
that holds it (404 for any other, even with a valid hash), with the media type it was stored
under, `nosniff` and a CSP that runs nothing: a file is data, never a page of ours.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from agentlog.domain.errors import AttachmentRefused
from agentlog.domain.events import AttachedFile
from agentlog.domain.rules.attachments import (
    IMAGE_TYPES,
    FileUpload,
    check_file_count,
    read_files,
)
from agentlog.infra.store.attachments import StoredFile
from agentlog.transport.keys import SETTINGS, STORE
from agentlog.transport.middleware.errors import ApiError
from agentlog.transport.openapi.fragments import SESSION_ID, returns_error

# The URL GET /messages gives a file: a path of this server, or the same with its origin.
_OWN_FILE_URL = re.compile(
    r"\A(?:https?://[^/?#]+)?/v1/sessions/(?P<session>[^/?#]+)/files/(?P<sha256>[0-9a-f]{64})"
    r"(?:\?[^#]*)?\Z"
)
SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
# Nothing in a file runs, whatever it holds: no scripts, no plugins, no frames, a unique origin.
FILE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"


def file_url(session_id: str, sha256: str) -> str:
    return f"/v1/sessions/{urllib.parse.quote(session_id, safe=':')}/files/{sha256}"


class Uploads:
    """A start's files: new ones (bytes to store) and ones the session holds already."""

    def __init__(self, new: list[FileUpload], kept: list[tuple[int, str]]) -> None:
        self.new = new
        # (index among the message's files, sha256) of each file sent back by its URL.
        self.kept = kept

    def __bool__(self) -> bool:
        return bool(self.new or self.kept)


NO_UPLOADS = Uploads([], [])


def read_uploads(request: web.Request, session_id: str, parts: Sequence[Any]) -> Uploads:
    """Check the files before anything is written (400, 413, 415 with nothing written)."""
    if not parts:
        return NO_UPLOADS
    check_file_count(len(parts))  # sent back by URL or new, a message's files count alike
    new_parts, kept = [], []
    for index, part in enumerate(parts):
        url = part.get("url") if isinstance(part, dict) else None
        own = _OWN_FILE_URL.match(url) if isinstance(url, str) else None
        if own is None:
            new_parts.append(part)
        elif urllib.parse.unquote(own["session"]) != session_id:
            raise AttachmentRefused(
                400, "invalid_file", "a file's URL names another session's file"
            )
        else:
            kept.append((index, own["sha256"]))
    return Uploads(read_files(new_parts, request.app[SETTINGS].file_limits), kept)


async def store_uploads(
    request: web.Request, session_id: str, uploads: Uploads
) -> list[AttachedFile]:
    """Store the new files in the session (once per hash) and return every file's reference,
    in the order sent. A file sent back by URL that the session does not hold is 400."""
    if not uploads:
        return []
    attachments = request.app[STORE].backend.attachments()
    unique = {u.reference.sha256: u for u in uploads.new}
    await attachments.put(
        session_id,
        [
            StoredFile(
                sha256=u.reference.sha256,
                media_type=u.reference.media_type,
                size=u.reference.size,
                filename=u.reference.filename,
                data=u.data,
            )
            for u in unique.values()
        ],
    )
    references = [u.reference for u in uploads.new]
    for index, sha256 in uploads.kept:
        held = await attachments.get(session_id, sha256)
        if held is None:
            raise AttachmentRefused(
                400, "unknown_file", f"this session holds no file {sha256}", sha256=sha256
            )
        reference = AttachedFile(
            sha256=sha256, media_type=held.media_type, size=held.size, filename=held.filename
        )
        references.insert(index, reference)
    return references


def _disposition(stored: StoredFile) -> str:
    # Images are shown where they are linked; anything else (a PDF, text that may be HTML) is
    # downloaded, never rendered as a page of this origin.
    kind = "inline" if stored.media_type in IMAGE_TYPES else "attachment"
    name = stored.filename or stored.sha256
    # An imported file's name was never cleaned by an upload: nothing but printable ASCII in
    # the plain form (a CR or LF would end the header); the exact name goes percent-encoded.
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


async def get_file(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    sha256 = request.match_info["sha256"]
    await request.app[STORE].head(session_id)  # 404 unknown, 410 deleted
    if not SHA256.match(sha256):
        raise ApiError(400, "invalid_sha256", "a file is named by its sha256 in lower-case hex")
    stored = await request.app[STORE].backend.attachments().get(session_id, sha256)
    if stored is None:
        raise ApiError(404, "unknown_file", f"this session holds no file {sha256}")
    etag = f'"{sha256}"'
    headers = {
        "ETag": etag,
        # The bytes under a hash never change; only who may read them does.
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": _disposition(stored),
        "Content-Security-Policy": FILE_POLICY,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    content_type = stored.media_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"  # accepted only as UTF-8
    headers["Content-Type"] = content_type
    return web.Response(body=stored.data, headers=headers)


OPENAPI_PATHS: dict[str, Any] = {
    "/v1/sessions/{session_id}/files/{sha256}": {
        "get": {
            "summary": "A file sent with a prompt of this session, by its sha256 (the `url` "
            "of a `file` part of GET /messages)",
            "description": "Served with the media type it was sent as, `ETag` = the hash "
            "(`If-None-Match` gives 304), `X-Content-Type-Options: nosniff`, a CSP that runs "
            "nothing, and `Content-Disposition` inline for images, attachment for anything "
            "else. A session token of the session reads it (read scope is enough; "
            "`?access_token=` works for an `<img src>`). Only the session that holds the "
            "file serves it: any other session's path is 404, whatever the hash.",
            "parameters": [
                SESSION_ID,
                {
                    "name": "sha256",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                },
            ],
            "responses": {
                "200": {
                    "description": "the file's bytes",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "304": {"description": "not modified (If-None-Match holds the ETag)"},
                "400": returns_error("the sha256 is not 64 lower-case hex digits"),
                "404": returns_error("unknown session, or this session holds no such file"),
                "410": returns_error("the session was deleted: its files with it"),
            },
        }
    }
}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/sessions/{session_id}/files/{sha256}", get_file)
