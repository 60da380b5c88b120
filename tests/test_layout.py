"""The seams, checked by reading the source: the pipeline's import order, no import cycles,
SQL only in the store, labeller names parsed only by their owner."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ("data", "generators", "search", "classifier", "gallery")  # each imports only leftwards


def _modules() -> dict[str, Path]:
    found = {}
    for package in PIPELINE:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports, at any depth (lazy imports inside functions count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        names |= {name for name in candidates if name in modules}
    return names


def test_no_import_runs_back_up_the_pipeline():
    modules = _modules()
    rank = {package: i for i, package in enumerate(PIPELINE)}
    backwards = [
        f"{name} imports {target}"
        for name, path in modules.items()
        for target in _imports(path, modules)
        if rank[target.split(".")[0]] > rank[name.split(".")[0]]
    ]
    assert backwards == []


def test_no_two_modules_import_each_other():
    modules = _modules()
    graph = defaultdict(set)
    for name, path in modules.items():
        graph[name] = {t for t in _imports(path, modules) if t != name and not name.startswith(t + ".")}
    pairs = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph[b]})
    assert pairs == []


SQL = re.compile(r"\b(INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|SELECT\b[^\n]*\bFROM)\b")


def test_sql_lives_only_in_the_store():
    offenders = [
        str(path.relative_to(ROOT))
        for name, path in _modules().items()
        if not name.startswith("gallery.store") and SQL.search(path.read_text())
    ]
    assert offenders == []


def test_labeller_names_are_parsed_only_by_their_owner():
    offenders = [
        str(path.relative_to(ROOT))
        for name, path in _modules().items()
        if name != "classifier.labellers" and re.search(r"""startswith\(\s*["']clip:|removeprefix\(\s*["']clip:""", path.read_text())
    ]
    assert offenders == []
