"""Structured logs: one JSON object per line, with the session and run from the context."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from agentlog.transport.logging_setup import configure_logging, log_context


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_the_context_ids(captured: io.StringIO) -> None:
    log = logging.getLogger("agentlog.test")
    log.info("outside")
    with log_context(session_id="s1"):
        log.warning("in %s", "session")
        with log_context(run_id="r1"):
            log.info("in run\nwith a newline")
        log.info("extra wins", extra={"session_id": "other"})
    first, second, third, fourth = records(captured)
    assert first.keys() == {"time", "level", "logger", "message"}
    assert second["session_id"] == "s1" and "run_id" not in second
    assert (second["level"], second["logger"], second["message"]) == (
        "WARNING",
        "agentlog.test",
        "in session",
    )
    assert (third["session_id"], third["run_id"]) == ("s1", "r1")
    assert third["message"] == "in run\nwith a newline"
    assert fourth["session_id"] == "other"
    assert len(captured.getvalue().splitlines()) == 4


def test_an_exception_is_kept_in_the_same_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (entry,) = records(captured)
    assert "ValueError: boom" in str(entry["exception"])


async def test_a_task_started_in_a_context_keeps_its_ids(captured: io.StringIO) -> None:
    async def run() -> None:
        await asyncio.sleep(0)
        logging.getLogger("runner").info("tick")

    with log_context(session_id="s2", run_id="r2"):
        task = asyncio.create_task(run())
    logging.getLogger("runner").info("after")
    await task
    after, tick = [r for r in records(captured) if r["logger"] == "runner"]
    assert "session_id" not in after
    assert (tick["session_id"], tick["run_id"]) == ("s2", "r2")
