"""A run's account at the model gateway, from its SDK options: the models its agent is
configured for (its model, fallback model and subagents' models) and its budget."""

from __future__ import annotations

import logging

from claude_agent_sdk import ClaudeAgentOptions

from agentlog.domain.events import ModelCallMetered
from agentlog.infra.agent.run.driver import RunInFlight
from agentlog.infra.agent.sandbox.metering import RunMeter

log = logging.getLogger(__name__)


def configured_models(options: ClaudeAgentOptions) -> frozenset[str] | None:
    """The model names the run's CLI may ask for; None when the agent names no main model
    (the CLI then picks its default, which agentlog does not know)."""
    if not options.model:
        return None
    names = {options.model}
    if options.fallback_model:
        names.add(options.fallback_model)
    for definition in (options.agents or {}).values():
        model = getattr(definition, "model", None)
        if isinstance(model, str) and model and model != "inherit":
            names.add(model)
    return frozenset(names)


def run_meter(options: ClaudeAgentOptions, run: RunInFlight, *, scripted: bool) -> RunMeter:
    """The meter of `run`: each call it measures is recorded with the run's events, until
    the run's terminal event (a call after it is logged, and not in the session's usage)."""

    def record(event: ModelCallMetered) -> None:
        if run.terminal_recorded:
            log.info("run %s: a model call after its end: %s", run.run_id, event)
            return
        run.recorder.record([event])

    return RunMeter(
        run_id=run.run_id,
        models=configured_models(options),
        budget_usd=options.max_budget_usd,
        record=record,
        scripted=scripted,
    )
