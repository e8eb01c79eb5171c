"""Caches bounded in bytes: the least recently used entries go first, by their sizes."""

from __future__ import annotations

from datetime import UTC, datetime

from agentlog.domain.events import RecordedEvent, SessionCreated
from agentlog.infra.store.byte_bounded import ByteBoundedLru
from agentlog.infra.store.projector import events_bytes, rows_bytes
from agentlog.projections import ui_messages


def test_entries_are_evicted_by_their_bytes_not_their_count() -> None:
    cache: ByteBoundedLru[str, str] = ByteBoundedLru(1_000)
    for name in "abcdefghij":
        cache.put(name, name, 10)
    assert len(cache) == 10 and cache.bytes == 100
    cache.put("big", "big", 950)
    # 950 + 10 * 10 > 1,000: the oldest small ones made room, the newest stayed.
    assert cache.bytes <= 1_000 and "big" in cache
    assert "a" not in cache and "j" in cache
    assert cache.bytes == sum(cache.size_of(k) for k in "abcdefghij") + 950


def test_a_value_replaced_at_the_same_size_is_the_newest_and_counted_once() -> None:
    cache: ByteBoundedLru[str, int] = ByteBoundedLru(30)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    cache.put("a", 3, 10)
    assert cache.bytes == 20 and cache.get("a") == 3
    cache.put("c", 4, 15)  # the least recently put, b, makes room
    assert "b" not in cache and cache.get("a") == 3 and cache.bytes == 25


def test_a_read_keeps_an_entry_and_a_replacement_counts_once() -> None:
    cache: ByteBoundedLru[str, int] = ByteBoundedLru(30)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    cache.put("b", 3, 15)  # replaced, not added
    assert cache.bytes == 25
    assert cache.get("a") == 1  # now the most recent
    cache.put("c", 4, 10)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 4
    assert cache.bytes == 20


def test_an_entry_larger_than_the_bound_is_never_held() -> None:
    cache: ByteBoundedLru[str, int] = ByteBoundedLru(100)
    cache.put("a", 1, 50)
    cache.put("a", 2, 101)
    assert "a" not in cache and cache.bytes == 0
    cache.put("b", 1, 50)
    assert cache.pop("b") == 1 and cache.bytes == 0 and cache.pop("b") is None


def test_a_sessions_rows_are_estimated_by_their_encoded_length() -> None:
    recorded = RecordedEvent(
        session_id="s",
        seq=1,
        position=1,
        time=datetime(2026, 1, 1, tzinfo=UTC),
        event=SessionCreated(title="x" * 10_000),
    )
    assert events_bytes([recorded, recorded])["s"] > 20_000
    state = ui_messages.fold([recorded])
    assert rows_bytes(state, None) >= 0
    assert rows_bytes(None, None) == 0
