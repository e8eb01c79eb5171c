"""Every request's way through the app, in order, as one middleware.

1. Records logged while handling a request for a session carry its id.
2. Every error leaves as JSON (`errors.error_answer`), whichever step below raised it.
3. The browser guard answers first (`browser_guard.browser_answer`): a foreign Host or
   Origin, a write that is not JSON, a CORS preflight.
4. Then auth (`auth.auth_refusal`): 401 or 403, or on.
5. The handler; a session it finds unknown may be a deleted one (`deletion.deleted_instead`:
   410 instead of 404).
6. A streamed answer is counted (`metrics.count_streams`) and held to the stream limits
   (`limits.limit_streams`), around the handler: the only steps that are not for every request.

One middleware rather than one per step: aiohttp calls each middleware as a coroutine of its
own, and seven of them were about a tenth of the event loop's time per append
(docs/benchmarks.md, "HTTP append").
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from agentlog.domain.errors import UnknownSession
from agentlog.infra.log_context import _SESSION_ID
from agentlog.transport.http.deletion import deleted_instead
from agentlog.transport.http.metrics import count_streams
from agentlog.transport.middleware.auth import auth_refusal
from agentlog.transport.middleware.browser_guard import browser_answer
from agentlog.transport.middleware.errors import Handler, error_answer
from agentlog.transport.middleware.limits import is_stream_request, limit_streams


@web.middleware
async def request_steps(request: web.Request, handler: Handler) -> web.StreamResponse:
    session_id = request.match_info.get("session_id")
    # The context variable itself, not log_context: a generator-based context manager per
    # request cost more than the rest of this step.
    token = _SESSION_ID.set(session_id) if session_id is not None else None
    try:
        answer = browser_answer(request)
        if answer is None:
            answer = await auth_refusal(request)
        if answer is not None:
            return answer
        try:
            if is_stream_request(request):
                limited = functools.partial(limit_streams, handler=handler)
                return await count_streams(request, limited)
            return await handler(request)
        except UnknownSession as unknown:
            deleted = await deleted_instead(request, unknown)
            if deleted is None:
                raise
            raise deleted from None
    except Exception as exc:
        error = error_answer(request, exc)
        if error is None:
            raise
        return error
    finally:
        if token is not None:
            _SESSION_ID.reset(token)


# What a response step does: set or count headers of the answer before they leave.
ResponseStep = Callable[[web.Request, web.StreamResponse], None]


def response_steps(
    steps: Sequence[ResponseStep],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """One on_response_prepare callback that runs `steps` in order, for every answer, streams
    included: aiohttp awaits each callback as a coroutine of its own, per response."""
    steps = tuple(steps)

    async def prepare_response(request: web.Request, response: web.StreamResponse) -> None:
        for step in steps:
            step(request, response)

    return prepare_response
