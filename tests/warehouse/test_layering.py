"""The packages import downward only: ``warehouse`` is what the others build on, so it imports
nothing from them (the ``loom`` command names their subcommands and services as strings)."""

from __future__ import annotations

import ast
from pathlib import Path

import warehouse

ABOVE_WAREHOUSE = {"ingest_api", "dagster_project", "bench", "tests"}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def test_warehouse_imports_nothing_from_the_packages_above_it() -> None:
    modules = sorted(Path(warehouse.__file__).parent.rglob("*.py"))
    assert len(modules) > 10
    upward = {
        module.name: sorted(imported_packages(module) & ABOVE_WAREHOUSE) for module in modules
    }
    assert {name: packages for name, packages in upward.items() if packages} == {}


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from ingest_api.main import create_app\n")
    assert imported_packages(module) == {"os", "ingest_api"}
