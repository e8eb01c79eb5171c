"""What the Messages API charges per million tokens, by model family (Anthropic's list prices).

The gateway prices each call it forwards from the tokens the model reported. A model this
table does not know is priced as the dearest family, so a name missing here never lets a
run spend past its budget unnoticed; a cache read costs a tenth of an input token, a cache
write a quarter more (the five-minute cache).
"""

from __future__ import annotations

from collections.abc import Mapping

# (input, output) in USD per million tokens; the first family a model id matches wins.
FAMILIES: tuple[tuple[tuple[str, ...], tuple[float, float]], ...] = (
    (("claude-opus-4-0", "claude-opus-4-1", "claude-opus-4-2025", "claude-3-opus"), (15.0, 75.0)),
    (("opus",), (5.0, 25.0)),
    (("sonnet",), (3.0, 15.0)),
    (("claude-3-haiku",), (0.25, 1.25)),
    (("claude-3-5-haiku",), (0.8, 4.0)),
    (("haiku",), (1.0, 5.0)),
)
DEAREST = (15.0, 75.0)


def per_million(model: str) -> tuple[float, float]:
    """(input, output) USD per million tokens for `model`."""
    for needles, price in FAMILIES:
        if any(needle in model for needle in needles):
            return price
    return DEAREST


def cost_usd(model: str, usage: Mapping[str, int]) -> float:
    """What one call with `usage` (the Messages API's token counts) cost."""
    into, out = per_million(model)
    tokens = (
        usage.get("input_tokens", 0) * into
        + usage.get("output_tokens", 0) * out
        + usage.get("cache_read_input_tokens", 0) * into * 0.1
        + usage.get("cache_creation_input_tokens", 0) * into * 1.25
    )
    return round(tokens / 1_000_000, 8)
