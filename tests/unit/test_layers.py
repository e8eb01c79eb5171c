"""The house's layers, read from the source: no module imports itself back through others, and
the pure layers (domain, projections) import neither infra nor transport.

Every import counts, module-level or inside a function: an import moved into a function to
dodge a cycle is still a cycle (it only fails later, at call time, and hides the tangle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.conftest import ROOT

FOLDERS = ("domain", "projections", "transport", "infra")
PURE = ("agentlog.domain", "agentlog.projections")
FORBIDDEN_TO_PURE = ("agentlog.infra", "agentlog.transport")


def installed_modules(root: Path) -> dict[str, Path]:
    """Module name as installed (`agentlog.<folder>...`, see setup.py) -> its file."""
    modules: dict[str, Path] = {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(["agentlog", *parts])] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every name an import statement anywhere in the file reaches, absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from package import module` imports the module too.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (a name inside a module counts as the module)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan's
    strongly connected components, iterative so a deep chain cannot hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def forbidden_imports(graph: Mapping[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(PURE)
        for target in targets
        if target.startswith(FORBIDDEN_TO_PURE)
    )


def test_no_module_imports_itself_back_through_others() -> None:
    graph = import_graph(installed_modules(ROOT))
    assert len(graph) > 100  # the whole tree was read
    assert cycles(graph) == []


def test_domain_and_projections_import_neither_infra_nor_transport() -> None:
    assert forbidden_imports(import_graph(installed_modules(ROOT))) == []


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    (tmp_path / "infra" / "a").mkdir(parents=True)
    (tmp_path / "infra" / "a" / "one.py").write_text("from agentlog.infra.a import two\n")
    (tmp_path / "infra" / "a" / "two.py").write_text("def later():\n    from .three import x\n")
    (tmp_path / "infra" / "a" / "three.py").write_text("import agentlog.infra.a.one\nx = 1\n")
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "rule.py").write_text("from agentlog.transport.app import make\n")
    (tmp_path / "transport").mkdir()
    (tmp_path / "transport" / "app.py").write_text("def make(): ...\n")
    graph = import_graph(installed_modules(tmp_path))

    assert cycles(graph) == [
        ["agentlog.infra.a.one", "agentlog.infra.a.three", "agentlog.infra.a.two"]
    ]
    assert forbidden_imports(graph) == ["agentlog.domain.rule imports agentlog.transport.app"]
