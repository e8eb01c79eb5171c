"""Files sent with a prompt, over HTTP through the real app, runner, SDK and CLI: uploaded with
useChat's body to /v1/chat (and with `files` to /runs), shown by GET /messages as `file` parts
whose URL a session token reads, never read through another session, refused whole when too
large or of a type the model cannot read (the log untouched), and gone with the session."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import RunStarted
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.store.attachments import StoredFile
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings

pytestmark = pytest.mark.slow

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
API = {"Authorization": "Bearer api-t"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
PNG_SHA = hashlib.sha256(PNG).hexdigest()


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def file_part(media_type: str, data: bytes, filename: str) -> dict[str, Any]:
    return {
        "type": "file",
        "mediaType": media_type,
        "url": data_url(media_type, data),
        "filename": filename,
    }


def user_message(text: str, *files: dict[str, Any], id: str = "u1") -> dict[str, Any]:
    return {"id": id, "role": "user", "parts": [*files, {"type": "text", "text": text}]}


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    agent = AgentConfig(workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes")
    return Settings(agent=agent, api_token="api-t", token_secret="s3cret-for-tokens", **overrides)


@pytest.fixture
async def client(aiohttp_client: Client, store: StoreBase, tmp_path: Path) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings(tmp_path), store=store))


async def token(client: TestClient[Any, Any], session_id: str, scope: str = "read") -> str:
    response = await client.post(
        f"/v1/sessions/{session_id}/tokens", json={"scope": scope}, headers=API
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["token"])


async def send(client: TestClient[Any, Any], session_id: str, *messages: Any) -> str:
    """POST /v1/chat and read its stream to the end: the run is over."""
    response = await client.post(
        "/v1/chat", json={"id": session_id, "messages": list(messages)}, headers=API
    )
    assert response.status == 200, await response.text()
    return await response.text()


def said(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


async def messages(client: TestClient[Any, Any], session_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session_id}/messages", headers=API)
    assert response.status == 200
    found: list[dict[str, Any]] = (await response.json())["messages"]
    return found


async def test_a_file_sent_through_chat_is_shown_by_messages_and_read_with_a_session_token(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    await send(client, "c1", user_message("What is this?", file_part("image/png", PNG, "dot.png")))

    user, answer = await messages(client, "c1")
    assert "I was shown 1 file(s): image image/png" in said(answer)
    url = f"/v1/sessions/c1/files/{PNG_SHA}"
    assert user["parts"] == [
        {"type": "file", "mediaType": "image/png", "url": url, "filename": "dot.png"},
        {"type": "text", "text": "What is this?"},
    ]
    assert answer["metadata"]["status"] == "finished"
    [started] = [r.event for r in await store.read("c1") if isinstance(r.event, RunStarted)]
    assert [(f.sha256, f.size) for f in started.files] == [(PNG_SHA, len(PNG))]  # no bytes

    read = await token(client, "c1")
    for how in (
        {"headers": {"Authorization": f"Bearer {read}"}},
        {"params": {"access_token": read}},
    ):
        response = await client.get(url, **how)
        assert response.status == 200
        assert await response.read() == PNG
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["ETag"] == f'"{PNG_SHA}"'
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert response.headers["Content-Disposition"].startswith('inline; filename="dot.png"')
    again = await client.get(url, headers={**API, "If-None-Match": f'"{PNG_SHA}"'})
    assert again.status == 304


async def test_a_hash_is_never_read_through_another_session(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    await send(client, "c1", user_message("Look", file_part("image/png", PNG, "dot.png")))
    await send(client, "c2", user_message("Hello"))
    other = {"Authorization": "Bearer " + await token(client, "c2")}

    assert (await client.get(f"/v1/sessions/c2/files/{PNG_SHA}", headers=other)).status == 404
    assert (await client.get(f"/v1/sessions/c2/files/{PNG_SHA}", headers=API)).status == 404
    assert (await client.get(f"/v1/sessions/c1/files/{PNG_SHA}", headers=other)).status == 403
    unknown = await client.get(f"/v1/sessions/c1/files/{'0' * 64}", headers=API)
    assert (unknown.status, (await unknown.json())["error"]["code"]) == (404, "unknown_file")


async def test_a_file_over_the_limit_is_413_and_nothing_is_written(
    aiohttp_client: Client, store: StoreBase, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, max_file_bytes=1024), store=store))
    big = file_part("text/plain", b"x" * 1025, "big.txt")
    response = await client.post(
        "/v1/chat", json={"id": "new", "messages": [user_message("Read", big)]}, headers=API
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "file_too_large"
    assert (await client.get("/v1/sessions/new", headers=API)).status == 404  # not created

    await client.post("/v1/sessions", json={"id": "s"}, headers=API)
    response = await client.post(
        "/v1/sessions/s/runs", json={"prompt": "Read", "files": [big]}, headers=API
    )
    assert response.status == 413
    assert await store.head("s") == 1
    assert await store.backend.tables_holding("x" * 1025) == []


async def test_svg_is_refused_as_415_with_nothing_written(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    svg = file_part("image/svg+xml", b"<svg onload='alert(1)'/>", "x.svg")
    response = await client.post(
        "/v1/chat", json={"id": "c1", "messages": [user_message("See", svg)]}, headers=API
    )
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"
    assert (await client.get("/v1/sessions/c1", headers=API)).status == 404


async def test_runs_take_files_and_a_deleted_sessions_files_are_gone(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    await client.post("/v1/sessions", json={"id": "s"}, headers=API)
    notes = file_part("text/plain", b"ship on Friday", "notes.txt")
    response = await client.post(
        "/v1/sessions/s/runs", json={"prompt": "Summarise", "files": [notes]}, headers=API
    )
    assert response.status == 202, await response.text()
    sha = hashlib.sha256(b"ship on Friday").hexdigest()
    served = await client.get(f"/v1/sessions/s/files/{sha}", headers=API)
    assert served.status == 200
    assert served.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert served.headers["Content-Disposition"].startswith("attachment;")

    stopped = await client.post(
        f"/v1/sessions/s/runs/{(await response.json())['run_id']}/cancel", json={}, headers=API
    )
    assert stopped.status in (202, 409)
    assert (await client.delete("/v1/sessions/s", headers=API)).status in (200, 202, 204)
    gone = await client.get(f"/v1/sessions/s/files/{sha}", headers=API)
    assert gone.status in (404, 410)
    assert await store.backend.tables_holding("ship on Friday") == []


async def test_an_edit_sends_back_the_files_url_and_a_regenerate_sends_the_turns_files(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    await send(client, "c1", user_message("Look", file_part("image/png", PNG, "dot.png")))
    [user, _] = await messages(client, "c1")
    # An edit of that message, as useChat sends it: its parts as GET /messages gave them.
    edited = {**user, "parts": [user["parts"][0], {"type": "text", "text": "Look again"}]}
    response = await client.post(
        "/v1/chat",
        json={"id": "c1", "messages": [edited], "trigger": "submit-message", "messageId": "u1"},
        headers=API,
    )
    assert response.status == 200, await response.text()
    await response.text()
    assert "I was shown 1 file(s)" in said((await messages(client, "c1"))[-1])
    response = await client.post(
        "/v1/chat",
        json={"id": "c1", "messages": [edited], "trigger": "regenerate-message"},
        headers=API,
    )
    await response.text()
    [user, answer] = await messages(client, "c1")
    assert "I was shown 1 file(s)" in said(answer)
    assert [p["type"] for p in user["parts"]] == ["file", "text"]
    starts = [r.event for r in await store.read_session("c1") if isinstance(r.event, RunStarted)]
    assert [[f.sha256 for f in s.files] for s in starts] == [[PNG_SHA]] * 3


async def test_a_fork_keeps_its_files_when_the_source_is_deleted(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    await send(client, "c1", user_message("Look", file_part("image/png", PNG, "dot.png")))
    forked = await client.post(
        "/v1/sessions/c1/fork", json={"at_seq": await store.head("c1"), "id": "f1"}, headers=API
    )
    assert forked.status == 201, await forked.text()
    assert (await client.delete("/v1/sessions/c1", headers=API)).status == 200

    [user, _] = await messages(client, "f1")
    assert user["parts"][0]["url"] == f"/v1/sessions/f1/files/{PNG_SHA}"
    served = await client.get(user["parts"][0]["url"], headers=API)
    assert (served.status, await served.read()) == (200, PNG)


async def test_a_stored_name_with_line_breaks_never_breaks_the_header(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    """An imported file's name was never cleaned by an upload."""
    await client.post("/v1/sessions", json={"id": "s"}, headers=API)
    data = b"imported"
    sha = hashlib.sha256(data).hexdigest()
    name = 'x"\r\nSet-Cookie: a=b é.txt'
    stored = StoredFile(sha256=sha, media_type="text/plain", size=8, filename=name, data=data)
    await store.backend.attachments().put("s", [stored])
    served = await client.get(f"/v1/sessions/s/files/{sha}", headers=API)
    assert served.status == 200 and "Set-Cookie" not in served.headers
    disposition = served.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="x___Set-Cookie: a=b _.txt"; filename*=')
