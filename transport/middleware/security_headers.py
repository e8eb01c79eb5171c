"""No page may frame ours, and the live page runs only its own scripts.

A framed page can be clicked through by a visitor who cannot see it (issue 22: one click on a
framed Approve ran a Bash call), so every answer, JSON and streams included, says
`X-Frame-Options: DENY` (older browsers) and CSP `frame-ancestors 'none'`. The HTML page also
gets a policy that loads scripts, styles and connections from this origin only, so an injected
`<script>` or inline handler never runs.
"""

from __future__ import annotations

from aiohttp import web

NO_FRAMES = "frame-ancestors 'none'"
PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        NO_FRAMES,
    ]
)


def forbid_framing(request: web.Request, response: web.StreamResponse) -> None:
    """A response step (agentlog.transport.middleware.request_steps): runs for every answer,
    before its headers leave."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Content-Security-Policy", NO_FRAMES)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
