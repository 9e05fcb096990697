"""The code's shape: one definition of a trial's record, small modules, one-way imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = sorted(p for pkg in ("model", "search") for p in (ROOT / pkg).rglob("*.py"))
MAX_LINES = 600


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    modules = {_module(p) for p in PRODUCT}
    return {name for name in found if name in modules}


def test_no_product_module_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in PRODUCT
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by responsibility: {long}"


def test_model_never_imports_optuna_or_search() -> None:
    for path in (ROOT / "model").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("optuna", "search")), f"{path}: imports {name}"


def test_no_import_cycle() -> None:
    graph = {_module(p): _imports(p) - {_module(p)} for p in PRODUCT}
    # A package's __init__ re-exporting its modules is no cycle: leave those edges out.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not d.startswith(name + ".")}
    seen: dict[str, str] = {}

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = "active"
        for dep in sorted(graph.get(node, ())):
            if seen.get(dep) == "active":
                cycle = [*stack[stack.index(dep) :], dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in seen:
                visit(dep, [*stack, dep])
        seen[node] = "done"

    for node in sorted(graph):
        if node not in seen:
            visit(node, [node])


_ATTR_BY_STRING = re.compile(
    r"""(user_attrs\s*(\[|\.get\()\s*["']|set_user_attr\(\s*["']|user_attrs=\{\s*["'])"""
)


@pytest.mark.parametrize(
    "path", [p for p in PRODUCT if p.name != "record.py"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_only_the_record_module_names_attr_keys(path: Path) -> None:
    """A trial's (or study's) user attrs are read and written through ``search.record``."""
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if _ATTR_BY_STRING.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_the_record_defines_every_key_the_storage_queries_use() -> None:
    from search import record

    assert {record.SLOT_ATTR, record.IDENTITY_ATTR, *record.REUSED_ATTRS} <= record.FIELDS
