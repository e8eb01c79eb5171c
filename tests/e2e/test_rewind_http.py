"""Regenerate, edit and `from_message_id` over HTTP against real `agentlog serve` processes,
on SQLite and PostgreSQL: the log gets `conversation_rewound` and the new run, GET /messages
shows the current branch only, and the agent's context is that branch (the scripted model's
"remember" scenario answers from the prompts it was given). Bad requests change nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    SSE,
    all_events,
    create_session,
    get_json,
    http,
    long_prompt,
    run_ended,
    servers,
    start,
    start_run,
    ui_stream_chunks,
    wait_until,
)
from tests.support.ai_sdk_client import as_projected, resume
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

REMEMBER_41 = "Please remember the number 41"
REMEMBER_42 = "Please remember the number 42"
RECALL = "What number did I ask you to remember?"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def post_run(
    client: aiohttp.ClientSession, base: str, session_id: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with client.post(f"{base}/v1/sessions/{session_id}/runs", json=body) as response:
        return response.status, await response.json()


async def turn(client: aiohttp.ClientSession, base: str, session_id: str, prompt: str) -> str:
    run_id = await start_run(client, base, session_id, prompt)
    ended = await run_ended(client, base, session_id, run_id, timeout=60)
    assert ended["type"] == "run_finished", ended
    return run_id


async def messages_of(client: aiohttp.ClientSession, base: str, session_id: str) -> list[Any]:
    body = await get_json(client, f"{base}/v1/sessions/{session_id}/messages")
    return list(body["messages"])


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (m["role"], "".join(p.get("text", "") for p in m["parts"] if p["type"] == "text"))
        for m in messages
    ]


async def started(
    client: aiohttp.ClientSession, base: str, session_id: str, body: dict[str, Any]
) -> str:
    status, answer = await post_run(client, base, session_id, body)
    assert status == 202, answer
    ended = await run_ended(client, base, session_id, answer["run_id"], timeout=60)
    assert ended["type"] == "run_finished", ended
    return str(answer["run_id"])


async def test_regenerate_edit_and_from_message_answer_from_the_current_branch_only(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    database_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    async with asyncio.timeout(300):
        server = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": database_url})
        base = server.url
        sid = await create_session(http, base)
        first = await turn(http, base, sid, REMEMBER_41)
        second = await turn(http, base, sid, REMEMBER_42)

        # useChat's regenerate() of the first answer: the chat keeps the messages before it.
        before = await messages_of(http, base, sid)
        regenerated = await started(
            http,
            base,
            sid,
            {
                "id": sid,
                "trigger": "regenerate-message",
                "messageId": first,
                "messages": before[:1],
            },
        )
        events = await all_events(http, base, sid)
        rewound = [e for e in events if e["type"] == "conversation_rewound"]
        first_start = next(e for e in events if e["run_id"] == first and e["type"] == "run_started")
        assert [(e["to_seq"], e["trigger"], e["message_id"]) for e in rewound] == [
            (first_start["seq"] - 1, "regenerate", first)
        ]
        after_rewind = events[events.index(rewound[0]) + 1]
        assert (after_rewind["type"], after_rewind["run_id"]) == ("run_started", regenerated)
        assert after_rewind["prompt"] == REMEMBER_41
        assert after_rewind["agent_session"] == rewound[0]["agent_session"]

        shown = await messages_of(http, base, sid)
        # The prompt's message keeps the id the client holds it under (useChat's own, or, as
        # here, the log's of the turn regenerated): the client and the log agree on it.
        assert [m["id"] for m in shown] == [f"{first}:user", regenerated]
        assert after_rewind["user_message_id"] == f"{first}:user"
        assert texts(shown)[0] == ("user", REMEMBER_41)
        assert "41" in texts(shown)[1][1]
        # The agent's context is the branch: 42 was set aside with the second turn.
        recall = await turn(http, base, sid, RECALL)
        shown = await messages_of(http, base, sid)
        assert texts(shown)[-1] == ("assistant", "You asked me to remember the number 41.")

        # An edit, as useChat's sendMessage({text, messageId}) sends it: the recall question
        # (its id is the chat's own) becomes another request; the messages after it are gone.
        edited_id = "chat-made-id"
        edited = await started(
            http,
            base,
            sid,
            {
                "id": sid,
                "trigger": "submit-message",
                "messageId": edited_id,
                "messages": [
                    *shown[:2],
                    {
                        "id": edited_id,
                        "role": "user",
                        "parts": [{"type": "text", "text": REMEMBER_42}],
                    },
                ],
            },
        )
        shown = await messages_of(http, base, sid)
        # The edited message is named as the client named it.
        assert [m["id"] for m in shown] == [f"{first}:user", regenerated, edited_id, edited]
        assert texts(shown)[2] == ("user", REMEMBER_42)

        # from_message_id, for clients without the AI SDK: replace the edited turn again.
        replaced = await started(
            http,
            base,
            sid,
            # `<run id>:user` names a turn too, whatever id its prompt's message has.
            {"prompt": "Why is the sky blue?", "from_message_id": f"{edited}:user"},
        )
        final = await turn(http, base, sid, RECALL)
        shown = await messages_of(http, base, sid)
        assert [m["id"] for m in shown] == [
            f"{first}:user",
            regenerated,
            f"{replaced}:user",
            replaced,
            f"{final}:user",
            final,
        ]
        assert texts(shown)[-1] == ("assistant", "You asked me to remember the number 41.")

        events = await all_events(http, base, sid)
        assert [e["trigger"] for e in events if e["type"] == "conversation_rewound"] == [
            "regenerate",
            "edit",
            "from_message",
        ]
        # The log kept everything: every run's events are still there, in order.
        runs = [e["run_id"] for e in events if e["type"] == "run_started"]
        assert runs == [first, second, regenerated, recall, edited, replaced, final]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

        summary = await get_json(http, f"{base}/v1/sessions/{sid}")
        # The branch has three turns; the cost counts all seven runs (money spent).
        assert (summary["runs"], summary["status"]) == (3, "idle")
        assert summary["usage"]["runs"] == 7


async def test_a_rewind_the_log_cannot_take_is_refused_and_writes_nothing(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    database_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    async with asyncio.timeout(300):
        server = start(
            servers,
            tmp_path,
            {"AGENTLOG_DATABASE_URL": database_url, "AGENTLOG_APPROVAL_GRACE_SECONDS": "0.5"},
        )
        base = server.url
        sid = await create_session(http, base)

        async def refused(body: dict[str, Any], status: int, code: str) -> None:
            before = await all_events(http, base, sid)
            got, answer = await post_run(http, base, sid, body)
            assert (got, answer["error"]["code"]) == (status, code), answer
            assert await all_events(http, base, sid) == before

        # Nothing to regenerate in a session without an answer.
        await refused(
            {"trigger": "regenerate-message", "messages": []}, 422, "nothing_to_regenerate"
        )
        first = await turn(http, base, sid, REMEMBER_41)

        def send(message_id: Any) -> dict[str, Any]:  # useChat's body for a new message
            text = [{"type": "text", "text": "x"}]
            return {
                "trigger": "submit-message",
                "messages": [{"id": message_id, "role": "user", "parts": text}],
            }

        # The client's id for its user message: plain and short, and no other message's.
        for bad in ("a b", "", "x" * 201, 7, "é"):
            await refused(send(bad), 400, "invalid_message_id")
        for taken in (f"{first}:user", first):
            await refused(send(taken), 409, "message_id_taken")
        await refused({"prompt": "x", "from_message_id": "run_nope"}, 422, "message_not_found")
        await refused(
            {"trigger": "regenerate-message", "messageId": "nope", "messages": []},
            422,
            "message_not_found",
        )
        await refused({"prompt": "x", "from_message_id": ""}, 400, "invalid_body")
        await refused({"prompt": "x", "from_message_id": None}, 400, "invalid_body")
        await refused({"prompt": "x", "trigger": "regenerate"}, 400, "invalid_body")
        await refused({"prompt": "x", "messageId": 7}, 400, "invalid_body")
        async with http.post(
            f"{base}/v1/sessions/{sid}/events",
            json={"events": [{"type": "custom", "name": "note", "data": 1}]},
        ) as response:
            assert response.status in (200, 201), await response.text()
        note = (await messages_of(http, base, sid))[-1]["id"]
        assert note.startswith("custom:")
        await refused({"prompt": "x", "from_message_id": note}, 422, "not_a_turn")

        regenerated = await started(http, base, sid, {"from_message_id": first})
        # The first answer is off the branch now; a client still showing it is told so.
        await refused({"prompt": "x", "from_message_id": first}, 409, "message_off_branch")
        await refused(
            {"trigger": "regenerate-message", "messageId": f"{first}:user", "messages": []},
            409,
            "message_off_branch",
        )
        await refused(
            {
                "trigger": "submit-message",
                "messageId": "m2",
                "messages": [
                    {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "a"}]},
                    {"id": first, "role": "assistant", "parts": []},
                    {"id": "m2", "role": "user", "parts": [{"type": "text", "text": "b"}]},
                ],
            },
            409,
            "message_off_branch",
        )

        # Two regenerates of the same answer at once: one runs, the other is a second run.
        before = await all_events(http, base, sid)
        both = await asyncio.gather(
            post_run(http, base, sid, {"from_message_id": regenerated}),
            post_run(http, base, sid, {"from_message_id": regenerated}),
        )
        assert sorted(status for status, _ in both) == [202, 409], both
        [(_, winner)] = [(s, a) for s, a in both if s == 202]
        [(_, loser)] = [(s, a) for s, a in both if s == 409]
        # Refused by the lease, or, if it came after the winner's start, by the head it was
        # planned on (the conversation changed meanwhile).
        assert loser["error"]["code"] in ("run_active", "conversation_changed")
        await run_ended(http, base, sid, winner["run_id"], timeout=60)
        added = (await all_events(http, base, sid))[len(before) :]
        assert sum(e["type"] == "conversation_rewound" for e in added) == 1
        regenerated = winner["run_id"]

        # While a run is active, as a second run is.
        slow = await start_run(http, base, sid, long_prompt(4))
        await refused({"from_message_id": regenerated}, 409, "run_active")
        await refused({"trigger": "regenerate-message", "messages": []}, 409, "run_active")
        await run_ended(http, base, sid, slow, timeout=60)

        # While an approval waits (the turn stopped to wait: its grace is over).
        asking = await start_run(http, base, sid, '[scenario:approval] publish "x"')
        await wait_until(lambda: _pending(http, base, sid), timeout=60, what="the pending approval")
        await run_ended(http, base, sid, asking, timeout=60)
        await refused({"from_message_id": regenerated}, 409, "approval_pending")


async def _pending(client: aiohttp.ClientSession, base: str, sid: str) -> bool:
    summary = await get_json(client, f"{base}/v1/sessions/{sid}")
    return bool(summary.get("pending_approvals"))


async def test_a_client_resuming_after_a_regenerate_gets_the_new_run_only(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    database_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    """GET /stream replays the active run, which is always on the current branch: after a
    regenerate, the run answering again, from its `start` (its own id), and nothing of the
    answer it replaces; the message a client builds from it is GET /messages' last one."""
    async with asyncio.timeout(300):
        server = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": database_url})
        base = server.url
        sid = await create_session(http, base)
        replaced = await turn(http, base, sid, long_prompt(2))
        status, answer = await post_run(
            http, base, sid, {"trigger": "regenerate-message", "messageId": replaced}
        )
        assert status == 202, answer
        again = answer["run_id"]
        async with http.get(f"{base}/v1/sessions/{sid}/stream", headers=SSE) as response:
            assert response.status == 200, await response.text()
            chunks, _ = ui_stream_chunks(await response.read())
        assert chunks[0]["type"] == "start" and chunks[0]["messageId"] == again
        assert replaced not in json.dumps(chunks)
        built = resume(chunks)
        assert (built.status, built.error) == ("ready", None)
        shown = await messages_of(http, base, sid)
        assert [m["id"] for m in shown] == [f"{again}:user", again]
        assert as_projected(built.message) == shown[-1]


async def test_a_fork_of_a_regenerated_conversation_regenerates_on_its_own(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    database_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    """Forked after a regenerate, the fork holds the branch only; regenerating in the fork
    rewinds the fork's log and context, and the source stays as it was."""
    async with asyncio.timeout(300):
        server = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": database_url})
        base = server.url
        sid = await create_session(http, base)
        await turn(http, base, sid, REMEMBER_41)
        second = await turn(http, base, sid, REMEMBER_42)
        await started(
            http, base, sid, {"prompt": "Why is the sky blue?", "from_message_id": second}
        )
        source = await messages_of(http, base, sid)
        head = (await get_json(http, f"{base}/v1/sessions/{sid}"))["head"]
        async with http.post(f"{base}/v1/sessions/{sid}/fork", json={"at_seq": head}) as r:
            fork = await r.json()
            assert r.status == 201, fork
        fid = fork["id"]
        assert await messages_of(http, base, fid) == source

        again = await started(http, base, fid, {"trigger": "regenerate-message", "messages": []})
        recall = await turn(http, base, fid, RECALL)
        shown = await messages_of(http, base, fid)
        assert [m["id"] for m in shown] == [
            source[0]["id"],
            source[1]["id"],
            f"{again}:user",
            again,
            f"{recall}:user",
            recall,
        ]
        assert texts(shown)[2] == ("user", "Why is the sky blue?")
        assert texts(shown)[-1] == ("assistant", "You asked me to remember the number 41.")
        assert await messages_of(http, base, sid) == source
