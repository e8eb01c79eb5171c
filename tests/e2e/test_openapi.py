"""/v1/openapi.json documents exactly the routes the app serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient

from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.openapi.document import ALL_PATHS
from agentlog.transport.settings import Settings


async def test_every_route_is_documented_and_every_documented_route_exists(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    async with open_store(f"sqlite:///{tmp_path}/a.db") as store:
        app = create_app(Settings(api_token="t"), store=store)
        client = await aiohttp_client(app)
        response = await client.get("/v1/openapi.json")  # public even with a token set
        assert response.status == 200
        document = await response.json()
        registered = {r.canonical for r in app.router.resources()}
        assert registered <= set(ALL_PATHS), registered - set(ALL_PATHS)
        assert set(document["paths"]) == registered
        assert document["openapi"].startswith("3.")
        for path, methods in document["paths"].items():
            served = {
                route.method.lower()
                for resource in app.router.resources()
                if resource.canonical == path
                for route in resource
                if route.method != "HEAD"
            }
            assert set(methods) == served, (path, set(methods), served)


async def test_the_document_describes_the_security_the_server_has(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    async with open_store(f"sqlite:///{tmp_path}/a.db") as store:
        open_app = await aiohttp_client(create_app(Settings(), store=store))
        document = await (await open_app.get("/v1/openapi.json")).json()
        assert "securitySchemes" not in document["components"]
        assert "security" not in document
        for methods in document["paths"].values():
            for operation in methods.values():
                assert operation["security"] == []  # nothing is asked for: nothing is needed
                assert "default" in operation["responses"]
        assert "/v1/admin/tokens" not in document["paths"]  # nothing to sign tokens with

        guarded = await aiohttp_client(create_app(Settings(api_token="t"), store=store))
        document = await (await guarded.get("/v1/openapi.json")).json()
        assert set(document["components"]["securitySchemes"]) == {"bearer", "accessToken"}
        paths = document["paths"]
        assert paths["/v1/sessions"]["post"]["security"] == [{"bearer": []}]
        assert paths["/v1/sessions/{session_id}/events"]["get"]["security"] == [
            {"bearer": []},
            {"accessToken": []},
        ]
        assert paths["/v1/admin/tokens"]["post"]["security"] == [{"bearer": []}]
        assert paths["/healthz"]["get"]["security"] == []


async def test_the_document_names_the_refusals_of_streams_and_tokens(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    """Issue 22: a stream refused for its token's caps (429) or the server's (503), and a
    revoked or expired session token (401), where each can happen."""
    async with open_store(f"sqlite:///{tmp_path}/a.db") as store:
        guarded = await aiohttp_client(create_app(Settings(api_token="t"), store=store))
        paths = (await (await guarded.get("/v1/openapi.json")).json())["paths"]
        streams = [
            "/v1/sessions/{session_id}/events",
            "/v1/sessions/{session_id}/stream",
            "/v1/chat/{session_id}/stream",
        ]
        for path in streams:
            responses = paths[path]["get"]["responses"]
            assert "too_many_streams" in responses["429"]["description"], path
            assert "too_many_streams" in responses["503"]["description"], path
            assert "token_revoked" in responses["401"]["description"], path
        for method, path in [("post", "/v1/sessions/{session_id}/runs"), ("post", "/v1/chat")]:
            responses = paths[path][method]["responses"]
            assert "too_many_streams" in responses["503"]["description"], path
            assert "too_many_streams" in responses["429"]["description"], path
            assert "too_many_runs" in responses["429"]["description"], path
        for path in ["/v1/sessions/{session_id}/runs", "/v1/sessions/{session_id}"]:
            for operation in paths[path].values():
                assert "token_revoked" in operation["responses"]["401"]["description"], path
        assert "401" in paths["/v1/sessions"]["post"]["responses"]
        assert "401" not in paths["/healthz"]["get"]["responses"]

        open_app = await aiohttp_client(create_app(Settings(), store=store))
        paths = (await (await open_app.get("/v1/openapi.json")).json())["paths"]
        responses = paths["/v1/sessions/{session_id}/events"]["get"]["responses"]
        assert "503" in responses  # the server's own limit holds without tokens too
        assert "401" not in responses and "429" not in responses
