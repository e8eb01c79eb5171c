"""Arrays sent to PostgreSQL as one text parameter each, in its array literal syntax.

The append function's call casts them (`$1::text::int[]`), so the server parses each with
array_in. Why not asyncpg's binary arrays: its encoder checks every element against the
collections.abc classes (Iterable, Sized, Mapping) to tell nested arrays apart, about 0.4 us
per element, so one 64-row plain batch's arrays cost the writer 0.15-0.2 ms of Python
(measured in 2026-12-06's profile of bench/append.py); one str is copied as it is, and the
server's parse costs it less than the JSON rows it replaced (docs/benchmarks.md, Appends).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def text_array(values: Sequence[str | None]) -> str:
    """`{"a","b",NULL}`: every element quoted (so NULL, braces, commas and blanks are plain
    text inside), a backslash or double quote escaped with a backslash, None as NULL."""
    if None not in values:
        texts: Sequence[str] = values  # type: ignore[assignment]
        flat = "".join(texts)
        if "\\" not in flat and '"' not in flat:
            return '{"' + '","'.join(texts) + '"}' if texts else "{}"
    return "{" + ",".join(map(_text_element, values)) + "}"


def int_array(values: Sequence[int | None]) -> str:
    """`{1,2,NULL}`."""
    if None not in values:
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"


def bool_array(values: Iterable[bool]) -> str:
    """`{t,f}`."""
    return "{" + ",".join(["t" if v else "f" for v in values]) + "}"


def _text_element(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
