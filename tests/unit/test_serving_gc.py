"""A serving process collects cyclic garbage less often, and never walks what it loaded."""

from __future__ import annotations

import gc

from agentlog.transport.http_server import GC_FIRST_GENERATION, tune_garbage_collection


def test_serving_raises_the_first_generation_threshold_and_freezes_start_up() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collection()
        assert gc.get_threshold() == (GC_FIRST_GENERATION, before[1], before[2])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
