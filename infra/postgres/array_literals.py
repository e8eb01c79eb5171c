"""Arrays sent to PostgreSQL as one text parameter each, in its array literal syntax.

The append function's call casts them (`$1::text::int[]`), so the server parses each with
array_in. Why not asyncpg's binary arrays: its encoder checks every element against the
collections.abc classes (Iterable, Sized, Mapping) to tell nested arrays apart, about 0.4 us
per element, so one 64-row plain batch's arrays cost the writer 0.15-0.2 ms of Python; one
str is copied as it is, and the server's parse costs it less than the JSON rows it replaced
(docs/benchmarks.md, Appends).

The literals are made by msgspec's JSON encoder, in C: a JSON array of numbers, booleans and
nulls, or of strings that needed no escape, is already an array literal once its brackets are
braces (array_in reads `null` as NULL, and `true`, `false` and numbers as the element type
does). Formatting each element in Python cost about as much as asyncpg's encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

_json = msgspec.json.Encoder()


def text_array(values: Sequence[str | None]) -> str:
    """`{"a","b",null}`: every element quoted (so NULL, braces, commas and blanks are plain
    text inside), None as NULL. JSON escapes only a double quote, a backslash and control
    characters, all with a backslash: without one, its strings are array_in's quoted strings
    (in which only a double quote and a backslash are special). With one, each element is
    escaped array_in's way."""
    encoded = _json.encode(values)
    if b"\\" not in encoded:
        return "{" + encoded[1:-1].decode() + "}"
    return "{" + ",".join(map(_text_element, values)) + "}"


def int_array(values: Sequence[int | None]) -> str:
    """`{1,2,null}`."""
    return "{" + _json.encode(values)[1:-1].decode() + "}"


def bool_array(values: Sequence[bool]) -> str:
    """`{true,false}`."""
    return "{" + _json.encode(values)[1:-1].decode() + "}"


def _text_element(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
