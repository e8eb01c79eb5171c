"""Read the Prometheus text exposition (format 0.0.4) back, checking its rules as it goes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


@dataclass
class Family:
    name: str
    kind: str = ""
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def parse(text: str) -> dict[str, Family]:
    """Families by name; fails on anything the 0.0.4 text format does not allow."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"{name} declared twice"
            current = families[name] = Family(name, help=help_text)
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert current is not None and current.name == name and not current.samples
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            current.kind = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, _, raw_labels, raw_value = match.groups()
            assert current is not None and current.kind
            suffixes = ("_bucket", "_sum", "_count") if current.kind == "histogram" else ("",)
            assert any(name == current.name + s for s in suffixes), f"{name} outside its family"
            labels: dict[str, str] = {}
            rest = raw_labels or ""
            while rest:
                found = LABEL.match(rest)
                assert found, f"bad labels {raw_labels!r}"
                key, value, _ = found.groups()
                labels[key] = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), value)
                rest = rest[found.end() :]
            current.samples.append((name, labels, float(raw_value)))
    return families


def check_histogram(family: Family) -> list[tuple[float, float]]:
    """(le, cumulative count) pairs; buckets ascend to +Inf and never decrease."""
    buckets = [
        (float(labels["le"]), value)
        for name, labels, value in family.samples
        if name.endswith("_bucket")
    ]
    bounds = [b for b, _ in buckets]
    assert bounds == sorted(bounds) and bounds[-1] == math.inf
    counts = [c for _, c in buckets]
    assert counts == sorted(counts)
    (count,) = [v for n, _, v in family.samples if n.endswith("_count")]
    assert counts[-1] == count
    return buckets
