"""Files sent with a prompt reach the model as the Messages API's content blocks: the real SDK
and its bundled CLI, driven by the runner, against the scripted model, which keeps every
request it was sent."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from agentlog.domain.errors import AttachmentRefused
from agentlog.domain.events import AttachedFile, RunFinished, RunStarted
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.store.attachments import StoredFile
from agentlog.infra.store.base import StoreBase

from .test_runner import new_session, only, runner_on, until_ended

pytestmark = pytest.mark.slow

# A 1x1 PNG and a one-page PDF: real files, as a browser would send them.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
NOTES = b"Meeting notes: ship on Friday.\n"


def stored(data: bytes, media_type: str, filename: str) -> StoredFile:
    return StoredFile(
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=media_type,
        size=len(data),
        filename=filename,
        data=data,
    )


def reference(file: StoredFile) -> AttachedFile:
    return AttachedFile(
        sha256=file.sha256, media_type=file.media_type, size=file.size, filename=file.filename
    )


def prompt_blocks(requests: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The blocks of the user message holding `text`, in the first request that has it,
    without the CLI's own text blocks (system reminders before, the saved image's path
    after)."""
    for body in requests:
        for message in body.get("messages", []):
            content = message.get("content")
            if message.get("role") != "user" or not isinstance(content, list):
                continue
            if any(b.get("type") == "text" and b["text"].strip() == text for b in content):
                return [b for b in content if b.get("type") != "text" or b["text"].strip() == text]
    raise AssertionError(f"no request carried the prompt {text!r}")


async def test_the_model_receives_images_pdfs_and_text_as_content_blocks(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    files = [
        stored(PNG, "image/png", "dot.png"),
        stored(PDF, "application/pdf", "plan.pdf"),
        stored(NOTES, "text/plain", "notes.txt"),
    ]
    await sqlite_store.backend.attachments().put(session, files)
    prompt = "What do these files say?"
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        started = await runner.start(session, prompt, files=[reference(f) for f in files])
        events = await until_ended(runner, sqlite_store, started)

    blocks = prompt_blocks(scripted_model.requests, prompt)
    assert [b["type"] for b in blocks] == ["image", "document", "document", "text"]
    image, pdf, notes = blocks[:3]
    assert image["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert pdf["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(pdf["source"]["data"]) == PDF
    assert notes["source"] == {"type": "text", "media_type": "text/plain", "data": NOTES.decode()}
    assert (pdf.get("title"), notes.get("title")) == ("plan.pdf", "notes.txt")

    (run_started,) = only(events, RunStarted)
    assert run_started.files == [reference(f) for f in files]  # references, not bytes
    (finished,) = only(events, RunFinished)
    assert "I was shown 3 file(s): image image/png" in (finished.result or "")


async def test_a_file_the_session_does_not_hold_refuses_the_start(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    elsewhere = await new_session(sqlite_store, "s-2")
    png = stored(PNG, "image/png", "dot.png")
    await sqlite_store.backend.attachments().put(elsewhere, [png])
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        with pytest.raises(AttachmentRefused) as refused:
            await runner.start(session, "Look", files=[reference(png)])
    assert refused.value.code == "unknown_file"
    assert [r.type for r in await sqlite_store.read(session)] == ["session_created"]
