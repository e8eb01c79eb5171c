"""Files sent with a prompt: which are accepted, and what the log keeps of them.

A file arrives as the AI SDK's `FileUIPart`, `{"type": "file", "mediaType", "url",
"filename"?}`, whose `url` is a `data:` URL (what a browser makes of a picked file). It is
accepted when its media type is one the model reads (images as image blocks, PDFs as document
blocks, text), its bytes are what that type says (an image's or a PDF's signature, text in
UTF-8), and it and the message's files together are within the limits. The log keeps only an
`AttachedFile` reference (sha256, media type, size, filename); the bytes are stored once per
session under their hash. SVG is not an image here: it is a document that runs scripts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentlog.domain.errors import AttachmentRefused
from agentlog.domain.events import AttachedFile

DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
# Base64 in a JSON body takes 4/3 of this: 3.3 MiB, within the default 4 MiB body limit.
DEFAULT_MAX_MESSAGE_FILE_BYTES = 5 * 512 * 1024
MAX_FILES_PER_MESSAGE = 20
MAX_FILENAME_CHARS = 255

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
PDF_TYPE = "application/pdf"
ALLOWED = (*IMAGE_TYPES, PDF_TYPE, "text/*")

# What the first bytes of each binary type are: a file labelled as one thing and holding
# another would be refused by the model (the run fails) or shown as something it is not.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}


@dataclass(frozen=True, slots=True)
class FileLimits:
    """The largest file, and the largest sum of one message's files, in decoded bytes."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_FILE_BYTES


@dataclass(frozen=True, slots=True)
class FileUpload:
    """One accepted file: its bytes and the reference the log keeps."""

    data: bytes
    reference: AttachedFile


def is_allowed(media_type: str) -> bool:
    return media_type in IMAGE_TYPES or media_type == PDF_TYPE or media_type.startswith("text/")


def parse_data_url(url: str) -> tuple[str, bytes]:
    """`data:[<media type>][;param=value]*[;base64],<data>` (RFC 2397) -> (media type, bytes).
    The media type is lower-cased, without its parameters ("" when the URL names none)."""
    if not url[:5].lower() == "data:":
        raise AttachmentRefused(
            400,
            "invalid_file",
            "a file's url must be a data: URL (data:<media type>;base64,<data>)",
        )
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise AttachmentRefused(400, "invalid_file", "the data: URL has no ',' before its data")
    params = [p.strip() for p in header.split(";")]
    media_type = params[0].lower()
    if params[-1].lower() == "base64" and len(params) > 1:
        try:
            # validate=True: stray characters are an error, not silently dropped bytes.
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise AttachmentRefused(
                400, "invalid_file", "the data: URL's base64 data is not valid base64"
            ) from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    return media_type, data


def _check_content(media_type: str, data: bytes) -> None:
    if media_type == "image/webp":
        matches = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    elif media_type in _SIGNATURES:
        matches = data.startswith(_SIGNATURES[media_type])
    else:  # text/*: the model reads it as text
        try:
            data.decode("utf-8")
            matches = True
        except UnicodeDecodeError:
            matches = False
    if not matches:
        raise AttachmentRefused(
            400,
            "invalid_file",
            f"the file's bytes are not {media_type}"
            + (" in UTF-8" if media_type.startswith("text/") else ""),
            media_type=media_type,
        )


def _filename(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise AttachmentRefused(400, "invalid_file", "a file's filename must be a string")
    # A name is shown and sent back in a header: no control characters, no path.
    name = "".join(c for c in raw if c.isprintable()).replace("/", "_").replace("\\", "_")
    return name[:MAX_FILENAME_CHARS] or None


def read_file(part: Any, limits: FileLimits) -> FileUpload:
    """One `{"mediaType", "url", "filename"?}` (a FileUIPart; `type`, if given, "file")."""
    if not isinstance(part, dict) or part.get("type", "file") != "file":
        raise AttachmentRefused(
            400, "invalid_file", 'a file is {"type": "file", "mediaType", "url", "filename"?}'
        )
    declared = part.get("mediaType")
    url = part.get("url")
    if not isinstance(declared, str) or not isinstance(url, str):
        raise AttachmentRefused(400, "invalid_file", "a file needs mediaType and url strings")
    media_type = declared.split(";")[0].strip().lower()
    if not is_allowed(media_type):
        raise AttachmentRefused(
            415,
            "unsupported_media_type",
            f"files of type {media_type!r} are not accepted; allowed: {', '.join(ALLOWED)}",
            media_type=media_type,
            allowed=list(ALLOWED),
        )
    # Checked on the encoded length first: nothing much larger than the limit is decoded.
    if len(url) > limits.max_file_bytes * 4 // 3 + 1024:
        raise _too_large(limits)
    url_type, data = parse_data_url(url)
    if url_type and url_type != media_type:
        raise AttachmentRefused(
            400,
            "invalid_file",
            f"mediaType {media_type!r} differs from the data: URL's {url_type!r}",
        )
    if len(data) > limits.max_file_bytes:
        raise _too_large(limits)
    _check_content(media_type, data)
    reference = AttachedFile(
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=media_type,
        size=len(data),
        filename=_filename(part.get("filename")),
    )
    return FileUpload(data=data, reference=reference)


def _too_large(limits: FileLimits) -> AttachmentRefused:
    return AttachmentRefused(
        413,
        "file_too_large",
        f"a file is larger than {limits.max_file_bytes} bytes",
        limit=limits.max_file_bytes,
    )


def check_file_count(count: int) -> None:
    if count > MAX_FILES_PER_MESSAGE:
        raise AttachmentRefused(
            400,
            "too_many_files",
            f"a message carries at most {MAX_FILES_PER_MESSAGE} files",
            limit=MAX_FILES_PER_MESSAGE,
        )


def read_files(parts: Sequence[Any], limits: FileLimits) -> list[FileUpload]:
    """The message's files, each checked, and all of them within the message's limit."""
    check_file_count(len(parts))
    uploads = [read_file(part, limits) for part in parts]
    total = sum(len(upload.data) for upload in uploads)
    if total > limits.max_message_bytes:
        raise AttachmentRefused(
            413,
            "files_too_large",
            f"the message's files are {total} bytes together, over {limits.max_message_bytes}",
            limit=limits.max_message_bytes,
        )
    return uploads


def file_parts(message: dict[str, Any]) -> list[Any]:
    """The `file` parts of a UIMessage, in order."""
    parts = message.get("parts")
    if not isinstance(parts, list):
        return []
    return [p for p in parts if isinstance(p, dict) and p.get("type") == "file"]
