"""The pure rules behind the gateway, the egress proxy and in-process tool permits."""

from __future__ import annotations

import json

import pytest

from agentlog.infra.agent.run.tool_permits import ToolPermits
from agentlog.infra.agent.sandbox.egress_proxy import host_allowed, parse_hosts
from agentlog.infra.agent.sandbox.metering import AnswerUsage, model_allowed
from agentlog.infra.agent.sandbox.prices import DEAREST, cost_usd, per_million


@pytest.mark.parametrize(
    ("requested", "configured", "allowed"),
    [
        ("claude-sonnet-4-5", {"claude-sonnet-4-5"}, True),
        ("claude-sonnet-4-5-20250929", {"claude-sonnet-4-5"}, True),
        ("claude-sonnet-4-5x", {"claude-sonnet-4-5"}, False),
        ("claude-opus-4-1", {"claude-sonnet-4-5"}, False),
        ("claude-haiku-4-5-20251001", {"claude-sonnet-4-5", "haiku"}, True),
        ("claude-3-5-haiku-20241022", {"haiku"}, True),
        ("claude-sonnet-4-5", {"haiku"}, False),
        ("sonnet-but-not-really", {"sonnet"}, True),  # an alias names a family, by its word
    ],
)
def test_a_model_is_allowed_by_name_dated_id_or_family_alias(
    requested: str, configured: set[str], allowed: bool
) -> None:
    assert model_allowed(requested, configured) is allowed


def sse(*events: dict[str, object]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_usage_is_read_from_a_stream_split_anywhere() -> None:
    stream = sse(
        {
            "type": "message_start",
            "message": {"model": "claude-sonnet-4-5", "usage": {"input_tokens": 12}},
        },
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "message_delta", "usage": {"output_tokens": 3}},
        {"type": "message_delta", "usage": {"output_tokens": 7}},
    )
    answer = AnswerUsage(streamed=True)
    for start in range(0, len(stream), 5):
        answer.feed(stream[start : start + 5])
    answer.finish()
    assert answer.model == "claude-sonnet-4-5"
    assert answer.usage == {"input_tokens": 12, "output_tokens": 7}  # the deltas are cumulative


def test_usage_is_read_from_a_whole_message_and_nonsense_counts_nothing() -> None:
    whole = AnswerUsage(streamed=False)
    whole.feed(
        json.dumps({"model": "m", "usage": {"input_tokens": 5, "output_tokens": -1}}).encode()
    )
    whole.finish()
    assert (whole.model, whole.usage) == ("m", {"input_tokens": 5})
    broken = AnswerUsage(streamed=False)
    broken.feed(b"<html>502</html>")
    broken.finish()
    assert (broken.model, broken.usage) == (None, {})


def test_a_call_is_priced_by_its_family_and_an_unknown_model_as_the_dearest() -> None:
    assert per_million("claude-sonnet-4-5-20250929") == (3.0, 15.0)
    assert per_million("claude-opus-4-1") == (15.0, 75.0)
    assert per_million("claude-opus-4-5") == (5.0, 25.0)
    assert per_million("claude-haiku-4-5") == (1.0, 5.0)
    assert per_million("someone-elses-model") == DEAREST
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert cost_usd("claude-sonnet-4-5", usage) == 18.0
    assert cost_usd("claude-sonnet-4-5", {"cache_read_input_tokens": 1_000_000}) == 0.3


def test_egress_hosts_are_named_with_or_without_a_port() -> None:
    assert parse_hosts(" API.github.com ,pypi.org:443,, ") == ("api.github.com", "pypi.org:443")
    assert host_allowed("api.github.com", 443, ["api.github.com"])
    assert host_allowed("API.GitHub.com.", 8080, ["api.github.com"])
    assert host_allowed("pypi.org", 443, ["pypi.org:443"])
    assert not host_allowed("pypi.org", 80, ["pypi.org:443"])
    assert not host_allowed("evil.api.github.com", 443, ["api.github.com"])
    for bad in ("https://example.org", "user@example.org", "example.org:https", ":443"):
        with pytest.raises(ValueError):
            parse_hosts(bad)


def test_a_permit_runs_one_call_of_the_tool_it_was_granted_for() -> None:
    permits = ToolPermits()
    permits.grant("toolu_1", "mcp__demo__add")
    assert not permits.take(None, "mcp__demo__add")
    assert not permits.take("toolu_1", "mcp__demo__publish")
    assert permits.take("toolu_1", "mcp__demo__add")
    assert not permits.take("toolu_1", "mcp__demo__add")  # once
