"""A run's account at the model gateway: which models it may call, its budget, and what its
calls cost, measured from the model's own answers as they pass through the gateway.

The CLI's `result` frame also reports usage and cost, but the CLI's stream can be written by
a hostile tool (a forged `result` claimed $9,999.99); the gateway sees every model call of the
run, so the run's recorded usage is the gateway's sum (`measured`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from agentlog.domain.events import ModelCallMetered, RunCancelled, RunFailed, RunFinished
from agentlog.infra.agent.sandbox.prices import cost_usd

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
Terminal = TypeVar("Terminal", bound=RunFinished | RunCancelled | RunFailed)
# The CLI's `modelUsage` names for the same counts (the projections read that shape).
_MODEL_USAGE_NAMES = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cache_read_input_tokens": "cacheReadInputTokens",
    "cache_creation_input_tokens": "cacheCreationInputTokens",
}
# Names the CLI resolves to the family's current model.
FAMILY_ALIASES = frozenset({"opus", "sonnet", "haiku"})
# A sandboxed run's key: a placeholder for the real one (which only the gateway holds) that
# also tells the gateway whose call it is.
KEY_PREFIX = "sk-ant-sandboxed-placeholder-"


def model_allowed(requested: str, configured: Iterable[str]) -> bool:
    """Whether a run configured for `configured` models may ask for `requested`: the same
    name, a dated id of it (`claude-sonnet-4-5` allows `claude-sonnet-4-5-20250929`), or any
    model of a family named by its alias (`sonnet`)."""
    parts = requested.split("-")
    for name in configured:
        if requested == name or requested.startswith(name + "-"):
            return True
        if name in FAMILY_ALIASES and name in parts:
            return True
    return False


@dataclass
class RunMeter:
    """One run's account; `record` receives each call's event as the gateway measures it."""

    run_id: str
    # The model names the run may ask for; None: any (the agent names no model, so the CLI
    # picks its own default).
    models: frozenset[str] | None
    budget_usd: float | None
    record: Callable[[ModelCallMetered], None]
    # The scripted model costs nothing (its tokens are counted, priced 0).
    scripted: bool = False
    key: str = field(default_factory=lambda: KEY_PREFIX + secrets.token_urlsafe(24))
    spent_usd: float = 0.0
    calls: int = 0
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def refusal(self, model: object) -> str | None:
        """Why the gateway must not forward a call for `model`, or None."""
        if not isinstance(model, str) or not model:
            return "the request names no model"
        if self.models is not None and not model_allowed(model, self.models):
            allowed = ", ".join(sorted(self.models))
            return f"model {model!r} is not one this agent is configured for ({allowed})"
        if self.budget_usd is not None and self.spent_usd >= self.budget_usd:
            return f"the run's budget of ${self.budget_usd:g} is spent"
        return None

    def count(self, endpoint: str, model: str | None, status: int, usage: dict[str, int]) -> None:
        """Add one forwarded call, and record it."""
        tokens = {name: usage.get(name, 0) for name in TOKEN_FIELDS if usage.get(name)}
        cost = 0.0 if self.scripted or model is None else cost_usd(model, tokens)
        self.calls += 1
        self.spent_usd = round(self.spent_usd + cost, 8)
        if model is not None and endpoint == "messages":
            figures = self.by_model.setdefault(
                model, {**dict.fromkeys(_MODEL_USAGE_NAMES.values(), 0), "costUSD": 0.0}
            )
            for name, key in _MODEL_USAGE_NAMES.items():
                figures[key] += tokens.get(name, 0)
            figures["costUSD"] = round(figures["costUSD"] + cost, 8)
        self.record(
            ModelCallMetered(
                run_id=self.run_id,
                endpoint=endpoint,
                model=model,
                status=status,
                usage=tokens,
                cost_usd=cost,
            )
        )

    def refuse(self, endpoint: str, model: object, why: str) -> None:
        """Record a call the gateway did not forward."""
        self.record(
            ModelCallMetered(
                run_id=self.run_id,
                endpoint=endpoint,
                model=model if isinstance(model, str) else None,
                status=403,
                refused=why,
            )
        )

    def usage(self) -> dict[str, int]:
        """The run's tokens, summed over every model."""
        total = dict.fromkeys(TOKEN_FIELDS, 0)
        for figures in self.by_model.values():
            for name, key in _MODEL_USAGE_NAMES.items():
                total[name] += int(figures[key])
        return total

    def measured(self, event: Terminal) -> Terminal:
        """The terminal event with the gateway's figures in place of the CLI's claims (the
        claimed cost is kept as `reported_cost_usd` on `run_finished`)."""
        usage = self.usage()
        models = {name: dict(figures) for name, figures in self.by_model.items()}
        if isinstance(event, RunFinished):
            return msgspec.structs.replace(
                event,
                total_cost_usd=self.spent_usd,
                usage=usage,
                model_usage=models,
                reported_cost_usd=event.total_cost_usd,
            )
        return msgspec.structs.replace(
            event, total_cost_usd=self.spent_usd, usage=usage, model_usage=models
        )


class AnswerUsage:
    """Reads the model and the token counts from an answer as it streams past: the SSE
    events `message_start` (model, input counts) and `message_delta` (cumulative output
    counts), or a whole JSON message."""

    def __init__(self, streamed: bool) -> None:
        self.streamed = streamed
        self.model: str | None = None
        self.usage: dict[str, int] = {}
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        if not self.streamed:
            return
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                self._event(_json(line[5:]))

    def finish(self) -> None:
        if not self.streamed:
            self._message(_json(self._pending))
        self._pending = b""

    def _event(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        if event.get("type") == "message_start":
            self._message(event.get("message"))
        elif event.get("type") == "message_delta":
            self._add(event.get("usage"))

    def _message(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if isinstance(message.get("model"), str):
            self.model = message["model"]
        self._add(message.get("usage"))

    def _add(self, usage: Any) -> None:
        # Counts in a later event replace earlier ones: message_delta's are cumulative.
        if isinstance(usage, dict):
            for name in TOKEN_FIELDS:
                value = usage.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    self.usage[name] = value


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
