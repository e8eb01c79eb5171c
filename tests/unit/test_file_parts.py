"""Files sent with a prompt in the conversation projection: `file` parts of the user message,
before its text, pointing at the route that serves them; the state keeps references only."""

from __future__ import annotations

import msgspec

from agentlog.domain.events import AttachedFile, RunStarted, SessionCreated
from agentlog.infra.agent.transcripts.conversion import transcript_lines
from agentlog.projections.ui_messages import ConversationState, fold, to_ui_messages
from tests.strategies import record

PNG = AttachedFile(sha256="a" * 64, media_type="image/png", size=67, filename="dot.png")
NOTES = AttachedFile(sha256="b" * 64, media_type="text/plain", size=15)
FILES_URL = "/v1/sessions/s/files/"


def user_parts(started: RunStarted) -> list[dict[str, object]]:
    state = fold(record("s", [SessionCreated(), started]))
    [user, _answer] = to_ui_messages(state, run_active=False, files_url=FILES_URL)
    parts: list[dict[str, object]] = user["parts"]
    return parts


def test_files_are_file_parts_before_the_prompts_text() -> None:
    parts = user_parts(RunStarted(run_id="r1", prompt="Look", files=[PNG, NOTES]))
    assert parts == [
        {"type": "file", "mediaType": "image/png", "url": FILES_URL + PNG.sha256,
         "filename": "dot.png"},
        {"type": "file", "mediaType": "text/plain", "url": FILES_URL + NOTES.sha256},
        {"type": "text", "text": "Look"},
    ]  # fmt: skip


def test_files_sent_without_a_word_make_no_text_part() -> None:
    assert [p["type"] for p in user_parts(RunStarted(run_id="r1", prompt="", files=[PNG]))] == [
        "file"
    ]


def test_a_prompt_without_files_is_one_text_part_as_before() -> None:
    assert user_parts(RunStarted(run_id="r1", prompt="hi")) == [{"type": "text", "text": "hi"}]


def test_the_stored_state_holds_references_and_survives_a_round_trip() -> None:
    state = fold(record("s", [SessionCreated(), RunStarted(run_id="r1", prompt="x", files=[PNG])]))
    stored = msgspec.json.encode(state)
    assert msgspec.json.decode(stored, type=ConversationState) == state


def test_a_converted_transcript_names_the_files_a_prompt_carried() -> None:
    events = record(
        "s", [SessionCreated(), RunStarted(run_id="r1", prompt="Look", files=[PNG, NOTES])]
    )
    [prompt_line] = transcript_lines(events, session_id="s", agent_session="a", cwd="/w")
    assert prompt_line["message"]["content"] == (
        "Look\n\n[The user attached 2 file(s) here: dot.png (image/png, 67 bytes), "
        "bbbbbbbbbbbb (text/plain, 15 bytes).]"
    )
