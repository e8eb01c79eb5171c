"""A prompt with files, as the content blocks of the Messages API user message the CLI sends.

Images are `image` blocks and PDFs `document` blocks, both with a base64 source; text files
are `document` blocks with a text source (the API's plain-text document), titled with their
filename. The files come first and the prompt's text last, the order the Messages API's
documentation advises for images and documents.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from agentlog.domain.errors import AttachmentRefused
from agentlog.domain.events import AttachedFile
from agentlog.domain.rules.attachments import IMAGE_TYPES, PDF_TYPE
from agentlog.infra.store.attachments import Attachments


def file_block(reference: AttachedFile, data: bytes) -> dict[str, Any]:
    if reference.media_type in IMAGE_TYPES:
        return {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": reference.media_type,
                "data": base64.b64encode(data).decode(),
            },
        }
    if reference.media_type == PDF_TYPE:
        block: dict[str, Any] = {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": PDF_TYPE,
                "data": base64.b64encode(data).decode(),
            },
        }
    else:  # text/*, checked to be UTF-8 when it was accepted
        block = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": data.decode()},
        }
    if reference.filename:
        block["title"] = reference.filename
    return block


async def prompt_content(
    attachments: Attachments, session_id: str, prompt: str, files: Sequence[AttachedFile]
) -> str | list[dict[str, Any]]:
    """The user message's content: the prompt itself when it has no files, else its blocks.
    Raises AttachmentRefused (400 `unknown_file`) for a file the session does not hold."""
    if not files:
        return prompt
    blocks = []
    for reference in files:
        stored = await attachments.get(session_id, reference.sha256)
        if stored is None:
            raise AttachmentRefused(
                400,
                "unknown_file",
                f"this session holds no file {reference.sha256}",
                sha256=reference.sha256,
            )
        blocks.append(file_block(reference, stored.data))
    if prompt.strip():
        blocks.append({"type": "text", "text": prompt})
    return blocks
