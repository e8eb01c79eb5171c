"""The append rules on a deleted session: its tombstone is final, whoever writes."""

from __future__ import annotations

import pytest

from agentlog.domain.errors import SessionAlreadyExists, SessionDeleted
from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.domain.rules.appending import check_append


def test_nothing_is_appended_to_a_deleted_session() -> None:
    with pytest.raises(SessionDeleted):
        check_append("s", 7, [CustomEventRecorded(name="late")], None, deleted=True)
    with pytest.raises(SessionDeleted):
        check_append("s", 7, [CustomEventRecorded(name="late")], 7, deleted=True)


def test_a_deleted_session_id_is_never_created_again() -> None:
    with pytest.raises(SessionAlreadyExists):
        check_append("s", 7, [SessionCreated()], None, deleted=True)


def test_a_live_session_takes_appends() -> None:
    check_append("s", 7, [CustomEventRecorded(name="on time")], 7)
