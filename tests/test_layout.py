"""The package's shape: each stage imports only the stages below it, and no module imports itself
back through another (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qa"
# Lower numbers are lower stages; a module may import its own stage or a lower one. The front
# ends (the app, the servers) sit on the engine, and the CLI starts them.
STAGES = {"ingest": 1, "index": 2, "search": 3, "answer": 4, "engine": 5, "sessions": 5, "serve": 6,
          "tui": 6}
BASE = {"config", "errors", "results"}  # shared values, below every stage
TOP = 7  # cli.py, __main__.py


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def rank(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return TOP
    if parts[1] in STAGES:
        return STAGES[parts[1]]
    return 0 if parts[1] in BASE else TOP


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qa"):
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("qa"))
        graph[name] = targets
    return {name: {t for t in targets if t in graph and t != name} for name, targets in graph.items()}


def test_stages_import_only_lower_stages():
    wrong = [f"{module} -> {target}" for module, targets in imports().items()
             for target in targets if rank(target) > rank(module)]
    assert not wrong, wrong


def test_no_import_cycles():
    graph = imports()
    for module in graph:
        stack, seen = list(graph[module]), set()
        while stack:
            current = stack.pop()
            if current == module:
                raise AssertionError(f"{module} imports itself back")
            if current not in seen:
                seen.add(current)
                stack.extend(graph[current])
