"""`serve` fits its open-files limit to its stream limit (transport/cli/open_files.py)."""

from __future__ import annotations

import resource

from agentlog.transport.cli.open_files import OTHER_FILES, budget_for
from agentlog.transport.settings import Settings


def test_the_soft_limit_is_raised_to_fit_the_streams_under_a_high_hard_limit() -> None:
    budget = budget_for(4000, soft=1024, hard=524288)
    assert budget.soft_limit == 4000 + OTHER_FILES
    assert budget.max_streams == 4000
    assert budget.warning is None


def test_an_infinite_hard_limit_fits_any_stream_limit() -> None:
    budget = budget_for(4000, soft=1024, hard=resource.RLIM_INFINITY)
    assert (budget.soft_limit, budget.max_streams) == (4000 + OTHER_FILES, 4000)


def test_a_soft_limit_that_already_fits_is_never_lowered() -> None:
    assert budget_for(4000, soft=65536, hard=65536).soft_limit == 65536
    infinite = resource.RLIM_INFINITY
    assert budget_for(4000, soft=infinite, hard=infinite).soft_limit == infinite


def test_under_a_low_hard_limit_the_stream_limit_is_lowered_to_what_fits_and_said() -> None:
    budget = budget_for(4000, soft=1024, hard=4096)
    assert budget.soft_limit == 4096
    assert budget.max_streams == 4096 - OTHER_FILES
    assert budget.warning is not None
    assert "AGENTLOG_MAX_SSE_CONNECTIONS=4000" in budget.warning
    assert f"at most {4096 - OTHER_FILES} streams" in budget.warning


def test_the_default_stream_limit_holds_the_fan_out_benchs_two_thousand_subscribers() -> None:
    # docs/benchmarks.md: one process fans out to 2,000 subscribers; a default below that
    # refused half of them with 503 on one worker.
    assert Settings().max_sse_connections >= 2 * 2000
