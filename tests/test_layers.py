"""Layers import downward only: upbit -> streaming -> lake -> alerts -> batch -> ops, cli on top.

A module may import the foundation (errors, settings, logs), its own layer and layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "upbit_pipeline"
ORDER = ["upbit", "streaming", "lake", "alerts", "batch", "ops", "cli"]
FOUNDATION = {"errors", "settings", "logs", "service", "__init__"}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "upbit_pipeline" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_imports_point_down_the_layer_list() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        own = relative.parts[0].removesuffix(".py")
        if own == "__main__":
            continue  # `python -m upbit_pipeline` is the CLI's other door
        if own in FOUNDATION:
            allowed: set[str] = FOUNDATION
        else:
            assert own in ORDER, f"{relative}: not in a known layer"
            allowed = FOUNDATION | set(ORDER[: ORDER.index(own) + 1])
        for module in _imports(path):
            layer = _layer_of(module)
            if layer is not None and layer not in allowed:
                violations.append(f"{relative} imports {module}")
    assert violations == []
