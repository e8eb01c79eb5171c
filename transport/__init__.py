"""The service's edges: the aiohttp app (the one composition root), HTTP/SSE handlers, CLI."""
