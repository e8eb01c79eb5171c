"""The model gateway forwards only what a run needs, and counts every call it forwards: over
a real unix socket, to the scripted model, as the sandboxed CLI reaches it."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from agentlog.domain.events import ModelCallMetered
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.sandbox.metering import RunMeter
from agentlog.infra.agent.sandbox.model_gateway import ModelGateway
from agentlog.infra.agent.sandbox.socket_paths import MAX_SOCKET_PATH, bindable

MODEL = "claude-sonnet-4-5"
HELLO = {
    "model": MODEL,
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "Hello there"}],
}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[ModelGateway]:
    async with ScriptedModel() as model:
        opened = ModelGateway(model.base_url)
        await opened.start(tmp_path / "model.sock")
        try:
            yield opened
        finally:
            await opened.close()


def meter(recorded: list[ModelCallMetered], **fields: Any) -> RunMeter:
    fields.setdefault("models", frozenset({MODEL}))
    fields.setdefault("budget_usd", None)
    return RunMeter(run_id="run_1", record=recorded.append, **fields)


async def call(
    gateway: ModelGateway, method: str, path: str, key: str, body: Any = None
) -> tuple[int, Any]:
    assert gateway.socket_path is not None
    connector = aiohttp.UnixConnector(path=str(gateway.socket_path))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.request(method, "http://model" + path, json=body, headers={"x-api-key": key}) as r,
    ):
        text = await r.text()
        return r.status, text


async def test_a_run_reaches_the_messages_endpoint_and_every_call_is_counted(
    gateway: ModelGateway,
) -> None:
    recorded: list[ModelCallMetered] = []
    run = meter(recorded, scripted=True)
    gateway.admit(run)
    status, text = await call(gateway, "POST", "/v1/messages?beta=true", run.key, HELLO)
    assert status == 200 and "message_stop" in text
    (metered,) = recorded
    assert metered.endpoint == "messages" and metered.status == 200
    assert metered.usage["input_tokens"] > 0 and metered.usage["output_tokens"] > 0
    assert metered.cost_usd == 0.0  # the scripted model costs nothing
    assert run.usage()["output_tokens"] == metered.usage["output_tokens"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/messages/batches"),
        ("POST", "/v1/files"),
        ("GET", "/v1/organizations/me"),
        ("GET", "/v1/messages"),
        ("DELETE", "/v1/messages"),
        ("POST", "/v1/complete"),
    ],
)
async def test_anything_but_the_messages_endpoint_is_refused(
    gateway: ModelGateway, method: str, path: str
) -> None:
    recorded: list[ModelCallMetered] = []
    run = meter(recorded)
    gateway.admit(run)
    status, text = await call(gateway, method, path, run.key, HELLO)
    assert status == 403 and "permission_error" in text
    (refused,) = recorded  # the run's own key asked for it: on the record, nothing spent
    assert (refused.endpoint, refused.status, refused.usage) == (f"{method} {path}", 403, {})
    assert refused.refused is not None and path in refused.refused


async def test_a_model_the_agent_is_not_configured_for_is_refused(gateway: ModelGateway) -> None:
    recorded: list[ModelCallMetered] = []
    run = meter(recorded)
    gateway.admit(run)
    status, text = await call(
        gateway, "POST", "/v1/messages", run.key, {**HELLO, "model": "claude-opus-4-1"}
    )
    assert status == 403 and "claude-opus-4-1" in text
    assert [(m.model, m.status) for m in recorded] == [("claude-opus-4-1", 403)]


async def test_a_key_of_no_run_is_refused(gateway: ModelGateway) -> None:
    recorded: list[ModelCallMetered] = []
    run = meter(recorded)
    gateway.admit(run)
    status, _ = await call(gateway, "POST", "/v1/messages", run.key + "x", HELLO)
    assert status == 403
    gateway.dismiss(run)  # the run ended: its key is worth nothing any more
    status, _ = await call(gateway, "POST", "/v1/messages", run.key, HELLO)
    assert status == 403
    assert recorded == []


async def test_a_run_whose_budget_is_spent_gets_no_more_calls(gateway: ModelGateway) -> None:
    recorded: list[ModelCallMetered] = []
    run = meter(recorded, budget_usd=0.000001)  # priced as the real model: one call spends it
    gateway.admit(run)
    first, _ = await call(gateway, "POST", "/v1/messages", run.key, HELLO)
    second, text = await call(gateway, "POST", "/v1/messages", run.key, HELLO)
    assert (first, second) == (200, 403)
    assert "budget" in text
    assert [m.status for m in recorded] == [200, 403]
    assert recorded[0].cost_usd > 0 and recorded[1].cost_usd == 0.0
    assert recorded[1].refused is not None and "budget" in recorded[1].refused


async def test_upstream_gets_the_servers_key_and_never_the_runs(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    async def messages(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response(
            {"model": MODEL, "usage": {"input_tokens": 4, "output_tokens": 2}, "content": []}
        )

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    gateway = ModelGateway(f"http://{host}:{port}", api_key="sk-ant-the-real-key")
    await gateway.start(tmp_path / "model.sock")
    try:
        recorded: list[ModelCallMetered] = []
        run = meter(recorded)
        gateway.admit(run)
        status, _ = await call(gateway, "POST", "/v1/messages", run.key, {**HELLO, "stream": False})
    finally:
        await gateway.close()
        await runner.cleanup()
    assert status == 200
    (headers,) = seen
    assert headers["x-api-key"] == "sk-ant-the-real-key"
    assert run.key not in str(headers)
    # A whole (not streamed) answer is counted too, and priced as the model it names.
    (metered,) = recorded
    assert metered.usage == {"input_tokens": 4, "output_tokens": 2}
    assert metered.cost_usd == round((4 * 3.0 + 2 * 15.0) / 1_000_000, 8)


async def test_a_gateway_in_a_folder_deeper_than_a_socket_path_allows_still_serves(
    tmp_path: Path,
) -> None:
    """$TMPDIR can be deep (a CI runner's per-test folder): the socket is still bound, at its
    real path, closed to other users, and a run reaches the model through it."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "model.sock"
    assert len(str(path)) > MAX_SOCKET_PATH
    async with ScriptedModel() as model:
        gateway = ModelGateway(model.base_url)
        await gateway.start(path)
        try:
            assert path.is_socket() and stat.S_IMODE(path.stat().st_mode) == 0o600
            run = meter([], scripted=True)
            gateway.admit(run)
            with bindable(path) as name:
                connector = aiohttp.UnixConnector(path=name)
                async with (
                    aiohttp.ClientSession(connector=connector) as http,
                    http.post(
                        "http://model/v1/messages", json=HELLO, headers={"x-api-key": run.key}
                    ) as answer,
                ):
                    assert answer.status == 200 and "message_stop" in await answer.text()
        finally:
            await gateway.close()
        assert not path.exists()


async def call_raw(gateway: ModelGateway, key: str, data: bytes) -> tuple[int, Any]:
    assert gateway.socket_path is not None
    connector = aiohttp.UnixConnector(path=str(gateway.socket_path))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(
            "http://model/v1/messages",
            data=data,
            headers={"x-api-key": key, "content-type": "application/json"},
        ) as r,
    ):
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize(
    "data", [b"", b"{not json", b'[{"model": "claude-sonnet-4-5"}]', b'"claude-sonnet-4-5"']
)
async def test_a_body_that_is_not_a_json_object_gets_400_and_reaches_no_model(
    gateway: ModelGateway, data: bytes
) -> None:
    recorded: list[ModelCallMetered] = []
    run = meter(recorded, scripted=True)
    gateway.admit(run)
    status, answer = await call_raw(gateway, run.key, data)
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"
    assert recorded == [] and run.calls == 0


@pytest.mark.parametrize("model", [None, 5, ["claude-sonnet-4-5"], ""])
async def test_a_call_naming_no_model_as_a_string_is_refused(
    gateway: ModelGateway, model: Any
) -> None:
    recorded: list[ModelCallMetered] = []
    run = meter(recorded)
    gateway.admit(run)
    status, answer = await call_raw(
        gateway, run.key, msgspec.json.encode({**HELLO, "model": model})
    )
    assert status == 403 and "names no model" in answer["error"]["message"]
    assert [m.status for m in recorded] == [403]


async def test_a_long_conversation_is_forwarded_byte_for_byte(tmp_path: Path) -> None:
    """The gateway reads only `model` and `stream` of a call; the rest, the whole conversation,
    goes upstream exactly as the CLI wrote it (key order, escapes, spacing), however long."""
    seen: list[bytes] = []

    async def messages(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response(
            {"model": MODEL, "usage": {"input_tokens": 4, "output_tokens": 2}, "content": []}
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    turns = ",".join(
        f'{{"role": "user", "content": "caf\\u00e9 \\"{i}\\" \u2603", "n": {i}.50}}'
        for i in range(20_000)
    )
    body = f'{{ "messages": [{turns}], "stream":false,"model" : "{MODEL}"}}'.encode()
    gateway = ModelGateway(f"http://{host}:{port}")
    await gateway.start(tmp_path / "model.sock")
    try:
        recorded: list[ModelCallMetered] = []
        run = meter(recorded)
        gateway.admit(run)
        status, _ = await call_raw(gateway, run.key, body)
    finally:
        await gateway.close()
        await runner.cleanup()
    assert status == 200 and seen == [body]
    (metered,) = recorded
    assert (metered.model, metered.status) == (MODEL, 200)
