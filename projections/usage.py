"""What runs cost: tokens and dollars from a run's terminal event, as pure functions.

The CLI reports a run's cost in its result: `model_usage` per model (the main agent and every
subagent it started, each under its model's name) and `total_cost_usd`; `usage` alone covers
only the main agent's own API calls. So tokens are summed over `model_usage` when the event
has it, and read from `usage` otherwise (events recorded before `model_usage` was kept).

A run the model gateway measured (sandboxed) carries the gateway's figures instead of the
CLI's, also on `run_failed` and on a `run_cancelled` that had no result: every forwarded call is
counted.

A run is counted once, from the first terminal event of the session's active run (the
projections' rule for terminal events): a recovered run has no result to count, and a late or
repeated terminal event for a run already ended changes nothing. A cancelled run counts what
its interrupted result reported.

The scripted model costs nothing: its runs (`run_started.agent == "scripted"`) count their
tokens with cost 0 and are counted as scripted, whatever the CLI priced them at (it prices any
model name, known or not, from its own table).
"""

from __future__ import annotations

from typing import Any

import msgspec

from agentlog.domain.events import Event, RunCancelled, RunFailed, RunFinished

SCRIPTED = "scripted"


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens and cost of one run, or summed over a session's runs."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cost_usd: float = 0.0
    runs: int = 0  # runs counted
    scripted_runs: int = 0  # of those, runs of the scripted model (cost 0)


NONE = Usage()

_MODEL_FIELDS = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cache_read_input_tokens": "cacheReadInputTokens",
    "cache_creation_input_tokens": "cacheCreationInputTokens",
}


def run_usage(event: Event, *, agent: str | None) -> Usage | None:
    """A terminal event's usage; None for events that carry none (abandoned, or failed or
    cancelled without a result or the gateway's measure)."""
    if not isinstance(event, RunFinished | RunCancelled | RunFailed):
        return None
    scripted = agent == SCRIPTED
    models = event.model_usage
    if not models and not event.usage and event.total_cost_usd is None:
        return None
    counts = dict.fromkeys(_MODEL_FIELDS, 0)
    if models:
        for figures in models.values():
            if isinstance(figures, dict):
                for name, key in _MODEL_FIELDS.items():
                    counts[name] += _int(figures.get(key))
    else:
        for name in _MODEL_FIELDS:
            counts[name] = _int(event.usage.get(name))
    cost = 0.0 if scripted else float(event.total_cost_usd or 0.0)
    return Usage(**counts, cost_usd=cost, runs=1, scripted_runs=1 if scripted else 0)


def add(total: Usage, run: Usage) -> Usage:
    return Usage(
        input_tokens=total.input_tokens + run.input_tokens,
        output_tokens=total.output_tokens + run.output_tokens,
        cache_read_input_tokens=total.cache_read_input_tokens + run.cache_read_input_tokens,
        cache_creation_input_tokens=total.cache_creation_input_tokens
        + run.cache_creation_input_tokens,
        # Rounded to a millionth of a cent so sums of float prices print as they should.
        cost_usd=round(total.cost_usd + run.cost_usd, 8),
        runs=total.runs + run.runs,
        scripted_runs=total.scripted_runs + run.scripted_runs,
    )


def usage_json(usage: Usage) -> dict[str, Any]:
    """The HTTP form: the figures, and `scripted` true when every counted run was scripted
    (the cost is then 0 by definition, not a price)."""
    body: dict[str, Any] = msgspec.structs.asdict(usage)
    body["scripted"] = usage.runs > 0 and usage.scripted_runs == usage.runs
    return body


def cost_metadata(usage: Usage) -> dict[str, Any]:
    """One run's figures as a UIMessage's metadata `cost` (the AI SDK's camelCase)."""
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "cacheReadInputTokens": usage.cache_read_input_tokens,
        "cacheCreationInputTokens": usage.cache_creation_input_tokens,
        "costUsd": usage.cost_usd,
        "scripted": usage.scripted_runs > 0,
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
