"""A fork in progress, over HTTP on SQLite and PostgreSQL: between two of its batches the fork's
id is no session to any route (404 on its reads, left out of the sessions list), and every
write to it is a precise 409 session_importing JSON with nothing written; once the last batch
commits it is an ordinary session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.store import import_batches
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.import_batches import BATCH_ROWS, BetweenBatches
from agentlog.infra.store.imported_session import ImportedSession
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings

ClientFactory = Callable[..., Awaitable[TestClient]]
EVENTS = BATCH_ROWS + 500  # two batches


async def test_a_fork_in_progress_is_404_to_reads_and_409_to_writes(
    store: StoreBase,  # first: opened before the app and closed after it
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await store.append("big", [SessionCreated()])
    await store.append("big", [CustomEventRecorded(name="n", data=i) for i in range(EVENTS)])
    agent = AgentConfig(workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes")
    client = await aiohttp_client(create_app(Settings(agent=agent), store=store))
    answers: list[tuple[str, int, Any]] = []

    async def meanwhile(written: int) -> None:
        for method, path, body in (
            ("GET", "/v1/sessions/copy", None),
            ("GET", "/v1/sessions/copy/events", None),
            ("GET", "/v1/sessions/copy/messages", None),
            ("POST", "/v1/sessions", {"id": "copy"}),
            ("POST", "/v1/sessions/copy/events", {"events": [{"type": "custom", "name": "x"}]}),
            ("POST", "/v1/sessions/big/fork", {"at_seq": 2, "id": "copy"}),
        ):
            response = await client.request(method, path, json=body)
            answer = await response.json()
            answers.append((f"{method} {path}", response.status, answer["error"]["code"]))
        listed = await (await client.get("/v1/sessions")).json()
        answers.append(("list", 200, sorted(s["id"] for s in listed["sessions"])))

    import_session = store.backend.import_session

    async def with_hook(
        session: ImportedSession, between_batches: BetweenBatches | None = None
    ) -> import_batches.Written:
        return await import_session(session, meanwhile)

    monkeypatch.setattr(store.backend, "import_session", with_hook)
    response = await client.post("/v1/sessions/big/fork", json={"at_seq": EVENTS + 1, "id": "copy"})
    assert response.status == 201, await response.text()

    assert answers == [
        ("GET /v1/sessions/copy", 404, "unknown_session"),
        ("GET /v1/sessions/copy/events", 404, "unknown_session"),
        ("GET /v1/sessions/copy/messages", 404, "unknown_session"),
        ("POST /v1/sessions", 409, "session_importing"),
        ("POST /v1/sessions/copy/events", 409, "session_importing"),
        ("POST /v1/sessions/big/fork", 409, "session_importing"),
        ("list", 200, ["big"]),
    ]
    # Nothing of the refused writes is in the fork: its log is the source's, then the fork.
    assert await store.head("copy") == EVENTS + 2
    assert (await client.get("/v1/sessions/copy")).status == 200
