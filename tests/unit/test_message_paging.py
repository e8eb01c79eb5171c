"""Paging a conversation's messages, newest first (projections/ui_messages/paging.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentlog.projections.ui_messages.paging import UnknownCursor, page_before
from agentlog.projections.ui_messages.state import Message


def conversation(count: int) -> list[Message]:
    return [Message(id=f"m{n}", role="user" if n % 2 else "assistant") for n in range(count)]


def ids(messages: object) -> list[str]:
    return [m.id for m in messages]  # type: ignore[attr-defined]


def test_the_first_page_is_the_newest_messages_in_chronological_order() -> None:
    page, cursor = page_before(conversation(5), limit=2)
    assert (ids(page), cursor) == (["m3", "m4"], "m3")


def test_a_cursor_gives_the_messages_just_older_than_it() -> None:
    page, cursor = page_before(conversation(5), limit=2, before="m3")
    assert (ids(page), cursor) == (["m1", "m2"], "m1")
    page, cursor = page_before(conversation(5), limit=2, before="m1")
    assert (ids(page), cursor) == (["m0"], None)


def test_the_page_that_starts_the_conversation_has_no_cursor() -> None:
    assert (ids(page_before(conversation(2), 2)[0]), page_before(conversation(2), 2)[1]) == (
        ["m0", "m1"],
        None,
    )
    assert page_before(conversation(0), 5) == ([], None)
    assert page_before(conversation(3), 2, before="m0") == ([], None)


def test_a_cursor_naming_no_message_is_refused() -> None:
    with pytest.raises(UnknownCursor):
        page_before(conversation(3), 2, before="gone")


@given(st.integers(0, 40), st.integers(1, 12))
def test_paging_back_to_the_start_yields_every_message_once_in_order(
    count: int, limit: int
) -> None:
    messages = conversation(count)
    loaded: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = page_before(messages, limit, cursor)
        assert len(page) <= limit
        loaded = ids(page) + loaded
        if cursor is None:
            break
    assert loaded == ids(messages)
