"""The Prometheus text exposition, read back by a parser written from the format's rules."""

from __future__ import annotations

import math

import pytest

from agentlog.domain.events import HeartbeatRecorded, TextDelta
from agentlog.transport.http.metrics import Counter, Gauge, Histogram, Metrics, _read
from tests.support.prometheus_text import check_histogram, parse


def test_every_metric_the_issue_asks_for_is_exposed_and_well_formed() -> None:
    metrics = Metrics()
    families = parse(metrics.render())
    assert {
        "agentlog_appends_total": "counter",
        "agentlog_append_duration_seconds": "histogram",
        "agentlog_group_commit_batch_appends": "histogram",
        "agentlog_sse_connections": "gauge",
        "agentlog_events_delivered_total": "counter",
        "agentlog_projection_lag_events": "gauge",
        "agentlog_active_runs": "gauge",
        "agentlog_heartbeats_total": "counter",
        "agentlog_sse_reconnects_total": "counter",
    }.items() <= {name: f.kind for name, f in families.items()}.items()
    for family in families.values():
        assert family.help
        if family.kind == "counter":
            assert family.name.endswith("_total")
        if family.kind == "histogram":
            check_histogram(family)


def test_appends_count_by_outcome_with_latency_and_heartbeats() -> None:
    metrics = Metrics()
    delta = TextDelta(message_id="m", block_index=0, delta="x")
    metrics.observe_append([delta, HeartbeatRecorded(), HeartbeatRecorded()], 0.003)
    metrics.observe_append([delta], 0.2)
    metrics.observe_append([HeartbeatRecorded()], 7.0, RuntimeError("down"))
    families = parse(metrics.render())
    appends = {s[1]["outcome"]: s[2] for s in families["agentlog_appends_total"].samples}
    assert appends == {"ok": 2, "error": 1}
    assert families["agentlog_events_appended_total"].samples[0][2] == 4
    assert families["agentlog_heartbeats_total"].samples[0][2] == 2  # the failed one wrote none
    buckets = dict(check_histogram(families["agentlog_append_duration_seconds"]))
    assert (buckets[0.0025], buckets[0.005], buckets[0.25], buckets[5], buckets[10]) == (
        0,
        1,
        2,
        2,
        3,
    )
    sums = {n: v for n, _, v in families["agentlog_append_duration_seconds"].samples}
    assert sums["agentlog_append_duration_seconds_sum"] == pytest.approx(7.203)


def test_streams_reconnects_and_deliveries() -> None:
    metrics = Metrics()
    metrics.stream_opened(resumed=False)
    metrics.stream_opened(resumed=True)
    metrics.stream_closed()
    metrics.delivered(5)
    metrics.delivered(0)
    families = parse(metrics.render())
    assert families["agentlog_sse_connections"].samples[0][2] == 1
    assert families["agentlog_sse_reconnects_total"].samples[0][2] == 1
    assert families["agentlog_events_delivered_total"].samples[0][2] == 5


def test_an_unset_gauge_has_no_sample_and_values_are_formatted() -> None:
    gauge = Gauge("g", "a gauge")
    assert parse(gauge.render())["g"].samples == []
    gauge.set(0.25)
    assert gauge.render().endswith("g 0.25\n")
    gauge.set(3.0)
    assert gauge.render().endswith("g 3\n")
    gauge.set(math.nan)
    assert gauge.render().endswith("g NaN\n")


def test_label_values_and_help_text_are_escaped() -> None:
    counter = Counter("c_total", "help with \\ and\nnewline", ["path"])
    counter.inc(path='a"b\\c\nd')
    text = counter.render()
    assert text.splitlines()[0] == "# HELP c_total help with \\\\ and\\nnewline"
    assert parse(text)["c_total"].samples == [("c_total", {"path": 'a"b\\c\nd'}, 1.0)]
    with pytest.raises(ValueError):
        counter.inc(-1, path="x")
    with pytest.raises(ValueError):
        counter.inc(other="x")


def test_a_histogram_bucket_holds_values_at_or_below_its_bound() -> None:
    histogram = Histogram("h", "sizes", [1, 2, 4])
    for value in (1, 2, 3, 4, 5):
        histogram.observe(value)
    buckets = check_histogram(parse(histogram.render())["h"])
    assert buckets == [(1, 1), (2, 2), (4, 4), (math.inf, 5)]


async def test_sources_may_be_plain_async_or_failing() -> None:
    async def lag() -> int:
        return 7

    def broken() -> int:
        raise RuntimeError("projector gone")

    assert await _read(lambda: 3, "x") == 3.0
    assert await _read(lag, "x") == 7.0
    assert await _read(broken, "x") is None
    assert await _read(None, "x") is None
