"""Which files a prompt may carry, read from their data: URLs: the pure rules of
agentlog.domain.rules.attachments."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from agentlog.domain.errors import AttachmentRefused
from agentlog.domain.rules.attachments import FileLimits, parse_data_url, read_file, read_files

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PDF = b"%PDF-1.4\n%%EOF\n"


def part(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
    return {"type": "file", "mediaType": media_type, "url": url, **extra}


def refusal(given: Any, limits: FileLimits | None = None) -> AttachmentRefused:
    with pytest.raises(AttachmentRefused) as caught:
        read_file(given, limits or FileLimits())
    return caught.value


def test_a_png_becomes_a_reference_by_its_sha256() -> None:
    upload = read_file(part("image/png", PNG, filename="dot.png"), FileLimits())
    assert upload.data == PNG
    assert upload.reference.sha256 == hashlib.sha256(PNG).hexdigest()
    assert upload.reference.media_type == "image/png"
    assert upload.reference.size == len(PNG)
    assert upload.reference.filename == "dot.png"


def test_a_percent_encoded_text_url_is_read_as_its_bytes() -> None:
    assert parse_data_url("data:text/plain;charset=utf-8,caf%C3%A9") == (
        "text/plain",
        "café".encode(),
    )


def test_pdf_and_markdown_are_accepted() -> None:
    assert read_file(part("application/pdf", PDF), FileLimits()).reference.size == len(PDF)
    text = read_file(part("text/markdown", b"# notes"), FileLimits())
    assert text.reference.media_type == "text/markdown"


@pytest.mark.parametrize("media_type", ["image/svg+xml", "application/zip", "video/mp4"])
def test_a_type_the_model_cannot_read_is_415(media_type: str) -> None:
    refused = refusal(part(media_type, b"<svg/>"))
    assert (refused.http_status, refused.code) == (415, "unsupported_media_type")


def test_a_url_that_is_not_a_data_url_is_400() -> None:
    refused = refusal({"type": "file", "mediaType": "image/png", "url": "https://x/a.png"})
    assert (refused.http_status, refused.code) == (400, "invalid_file")


def test_bad_base64_is_400() -> None:
    refused = refusal({"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,%%"})
    assert refused.code == "invalid_file"


def test_bytes_that_are_not_the_named_type_are_400() -> None:
    assert refusal(part("image/png", b"<html><script>")).code == "invalid_file"
    assert refusal(part("text/plain", b"\xff\xfe\x00bad")).code == "invalid_file"


def test_a_media_type_that_differs_from_the_urls_is_400() -> None:
    mislabelled = {**part("image/png", PNG), "mediaType": "image/gif"}
    assert refusal(mislabelled).code == "invalid_file"


def test_a_file_over_the_file_limit_is_413() -> None:
    refused = refusal(part("text/plain", b"x" * 101), FileLimits(max_file_bytes=100))
    assert (refused.http_status, refused.code) == (413, "file_too_large")
    assert read_file(part("text/plain", b"x" * 100), FileLimits(max_file_bytes=100))


def test_files_over_the_message_limit_together_are_413() -> None:
    limits = FileLimits(max_file_bytes=100, max_message_bytes=150)
    with pytest.raises(AttachmentRefused) as caught:
        read_files([part("text/plain", b"a" * 80), part("text/plain", b"b" * 80)], limits)
    assert (caught.value.http_status, caught.value.code) == (413, "files_too_large")
    assert len(read_files([part("text/plain", b"a" * 75)] * 2, limits)) == 2


def test_a_filename_loses_its_path_and_control_characters() -> None:
    upload = read_file(part("text/plain", b"x", filename="../etc/\npasswd"), FileLimits())
    assert upload.reference.filename == ".._etc_passwd"
