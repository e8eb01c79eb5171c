"""The README and docs/*.md as their tests read them: pages, sections and fenced blocks.

Every test that runs a documented example reads it from its page through `section` and
`shell_blocks`, and returns what it runs from its module's `claimed_blocks()`;
tests/e2e/test_readme_docs.py checks that every shell block of every page is claimed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

# Fence languages whose blocks are commands a reader runs: each must be run by a test.
SHELL = frozenset({"sh", "shell", "bash", "console", "http"})

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", flags=re.M | re.S)
_HEADING = re.compile(r"^(#{1,6}) +(.+?) *$", flags=re.M)


@dataclass(frozen=True)
class Fence:
    page: str
    line: int
    language: str
    body: str  # stripped, as the tests run it


def pages() -> list[Path]:
    """The README and every page of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def read(page: str) -> str:
    """A page by its path from the repository root, e.g. "docs/approvals.md"."""
    return (ROOT / page).read_text()


def section(page: str, heading: str) -> str:
    """The text under the heading titled exactly `heading`, up to the next heading of the same
    or a higher level (fenced blocks are not searched for headings)."""
    text = read(page)
    spans = [m for m in _HEADING.finditer(text) if not _inside_fence(text, m.start())]
    for i, match in enumerate(spans):
        if match.group(2) != heading:
            continue
        level = len(match.group(1))
        end = next(
            (m.start() for m in spans[i + 1 :] if len(m.group(1)) <= level),
            len(text),
        )
        return text[match.end() : end]
    raise AssertionError(f"{page} has no heading {heading!r}")


def fences(text: str, page: str = "<text>") -> list[Fence]:
    return [
        Fence(page, text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2).strip())
        for m in _FENCE.finditer(text)
    ]


def shell_blocks(text: str) -> list[str]:
    """The shell blocks of a page or section, in order, stripped."""
    return [f.body for f in fences(text) if f.language in SHELL]


def without_fences(text: str) -> str:
    """The text with every fenced block blanked (line numbers kept)."""
    return _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _inside_fence(text: str, at: int) -> bool:
    return any(m.start() < at < m.end() for m in _FENCE.finditer(text))
