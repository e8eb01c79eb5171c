"""Which event loop each AGENTLOG_EVENT_LOOP value stands for (transport/event_loop.py)."""

from __future__ import annotations

import sys

import pytest

from agentlog.transport.event_loop import ASYNCIO, EventLoopUnavailable, choose_event_loop
from agentlog.transport.settings import ConfigError, load_settings


def test_asyncio_is_asyncios_own_loop_as_asyncio_run_makes_it() -> None:
    assert choose_event_loop("asyncio") == ASYNCIO
    assert ASYNCIO.new_loop is None


@pytest.mark.parametrize("choice", ["auto", "uvloop"])
def test_auto_and_uvloop_make_a_uvloop_loop_where_it_is_installed(choice: str) -> None:
    uvloop = pytest.importorskip("uvloop")
    chosen = choose_event_loop(choice)
    assert chosen.name == "uvloop"
    assert chosen.new_loop is not None
    loop = chosen.new_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_auto_falls_back_to_asyncio_where_uvloop_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert choose_event_loop("auto") == ASYNCIO


def test_uvloop_asked_for_where_it_cannot_be_imported_is_an_error_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(EventLoopUnavailable, match="set AGENTLOG_EVENT_LOOP=asyncio"):
        choose_event_loop("uvloop")


def test_an_unknown_event_loop_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="AGENTLOG_EVENT_LOOP='trio' must be one of"):
        load_settings({"AGENTLOG_EVENT_LOOP": "trio"})


def test_the_setting_is_read_from_the_environment() -> None:
    assert load_settings({"AGENTLOG_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    assert load_settings({}).event_loop == "auto"
