"""The chat page's own backend, the pattern a product uses: it holds the agentlog API token,
mints a session token for the page's chat (which only reaches that session), and serves the
built app, from another origin than agentlog's (so agentlog must list it in
AGENTLOG_ALLOWED_ORIGINS).

    AGENTLOG_URL=http://127.0.0.1:8080 AGENTLOG_API_TOKEN=... python server.py  # port 5173
"""

import os
from pathlib import Path

import aiohttp
from aiohttp import web

AGENTLOG = os.environ.get("AGENTLOG_URL", "http://127.0.0.1:8080")
API = {"Authorization": f"Bearer {os.environ['AGENTLOG_API_TOKEN']}"}
DIST = Path(__file__).with_name("dist")


async def session_token(request: web.Request) -> web.Response:
    chat = request.query["chat"]  # a product checks here that its signed-in user owns the chat
    async with aiohttp.ClientSession(AGENTLOG, headers=API) as agentlog:
        async with agentlog.post("/v1/sessions", json={"id": chat}) as created:
            if created.status not in (201, 409):  # 409: the chat exists already
                return web.Response(status=created.status, text=await created.text())
        async with agentlog.post(f"/v1/sessions/{chat}/tokens", json={"scope": "write"}) as minted:
            if minted.status != 201:
                return web.Response(status=minted.status, text=await minted.text())
            token = (await minted.json())["token"]
    return web.json_response({"base": AGENTLOG, "token": token})


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(DIST / "index.html")


app = web.Application()
app.router.add_get("/session-token", session_token)
app.router.add_get("/", page)
app.router.add_static("/assets", DIST / "assets")

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(os.environ.get("PORT", "5173")))
