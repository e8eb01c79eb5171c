"""The documentation cannot rot unseen: every shell example in README.md and docs/*.md is run by
a test, every relative link leads to a file (and heading), and every repository path and module
name it writes exists."""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT
from tests.e2e.doc_pages import SHELL, Fence, fences, pages, without_fences

# The modules that run documented examples, each returning them from `claimed_blocks()`.
RUNNERS = sorted(p.stem for p in (ROOT / "tests" / "e2e").glob("test_readme*.py"))

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\n]+)`")
_REPO_PATH = re.compile(
    r"^(?:domain|projections|infra|transport|tests|bench|docs|\.ci)(?:/[\w.\-]+)*/?$"
)
_MODULE = re.compile(r"^agentlog(?:\.\w+)+$")


def runner(name: str) -> ModuleType:
    return importlib.import_module(f"tests.e2e.{name}")


def claimed() -> set[str]:
    blocks: set[str] = set()
    for name in RUNNERS:
        module = runner(name)
        if hasattr(module, "claimed_blocks"):
            blocks.update(module.claimed_blocks())
    return blocks


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


def unclaimed(fenced: Iterable[Fence], claimed_blocks: set[str]) -> list[str]:
    """Every fence that names no language, and every shell block no test claims."""
    problems = []
    for fence in fenced:
        where = f"{fence.page}:{fence.line}"
        if not fence.language:
            problems.append(f"{where}: a fence without a language (say sh, text, json, ...)")
        elif fence.language in SHELL and fence.body not in claimed_blocks:
            first = fence.body.splitlines()[0] if fence.body else ""
            problems.append(f"{where}: no test runs this block: {first[:80]}")
    return problems


def all_fences() -> list[Fence]:
    return [f for page in pages() for f in fences(page.read_text(), relative(page))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = without_fences(page.read_text())
    return {slug(h) for h in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.M)}


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    shown = page.relative_to(root)
    problems = []
    text = without_fences(page.read_text())
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_file():
            problems.append(f"{shown}: {target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{shown}: {target}: no such heading")
    return problems


def written_paths(page: Path) -> list[str]:
    """The repository paths and agentlog module names a page writes in code spans, and the
    folders of the README's folder map."""
    text = page.read_text()
    spans = _CODE.findall(without_fences(text))
    names = [s for s in spans if _REPO_PATH.match(s) or _MODULE.match(s)]
    if page.name == "README.md":
        for fence in fences(text):
            if fence.language == "text" and fence.body.startswith("domain/"):
                # A folder per line; an indented line goes on describing the one above.
                lines = fence.body.splitlines()
                names += [line.split()[0] for line in lines if line and not line[0].isspace()]
    expanded = []
    for name in names:  # tests/{unit,e2e}/ names each folder
        braces = re.search(r"\{([^}]+)\}", name)
        if braces is None:
            expanded.append(name)
        else:
            expanded += [name.replace(braces.group(0), part) for part in braces[1].split(",")]
    return expanded


def missing(name: str) -> bool:
    if _MODULE.match(name):
        # A module, or a name in one (`agentlog.x.y.FIELDS`): the longest importable prefix,
        # then each remaining part as an attribute.
        parts = name.split(".")
        for cut in range(len(parts), 1, -1):
            module = ".".join(parts[:cut])
            try:
                found: object = importlib.import_module(module)
            except ImportError:
                continue
            for attribute in parts[cut:]:
                if not hasattr(found, attribute):
                    return True
                found = getattr(found, attribute)
            return False
        return True
    return not (ROOT / name).exists()


def test_every_shell_example_in_the_docs_is_run_by_a_test() -> None:
    assert unclaimed(all_fences(), claimed()) == []


@pytest.mark.parametrize("name", RUNNERS)
def test_each_example_runner_claims_blocks_that_are_in_the_docs(name: str) -> None:
    if name == "test_readme_docs":
        return
    blocks = runner(name).claimed_blocks()
    documented = {f.body for f in all_fences()}
    assert blocks and all(block in documented for block in blocks)


def test_the_claim_check_reports_an_unclaimed_block_and_a_bare_fence() -> None:
    page = (
        "Run this:\n\n```sh\ncurl -s http://127.0.0.1:8080/healthz\n```\n\n"
        "And this:\n\n```\nagentlog sessions\n```\n\n```text\na picture\n```\n"
    )
    problems = unclaimed(fences(page, "page.md"), claimed_blocks=set())
    assert problems == [
        "page.md:3: no test runs this block: curl -s http://127.0.0.1:8080/healthz",
        "page.md:9: a fence without a language (say sh, text, json, ...)",
    ]
    assert unclaimed(fences(page, "page.md"), {"curl -s http://127.0.0.1:8080/healthz"}) == [
        "page.md:9: a fence without a language (say sh, text, json, ...)"
    ]


def test_every_relative_link_leads_to_a_file_and_heading() -> None:
    assert [problem for page in pages() for problem in broken_links(page)] == []


def test_the_link_check_reports_a_missing_file_and_heading(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A `useChat` heading\n")
    page.write_text(
        "[ok](other.md#a-usechat-heading) [gone](gone.md) [bad](other.md#nowhere) "
        "[web](https://example.com/x) [self](#top)\n\n# Top\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "page.md: gone.md: no such file",
        "page.md: other.md#nowhere: no such heading",
    ]


def test_every_path_and_module_the_docs_write_exists() -> None:
    named = {name for page in pages() for name in written_paths(page)}
    assert named, "no paths found: the check itself is broken"
    gone = sorted(n for n in named if missing(n))
    assert gone == []
