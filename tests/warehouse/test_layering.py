"""The packages import downward only: ``warehouse`` is what the others build on, so it names
nothing from them, not even as a string (a ``"module:attribute"`` target, ``python -m …``, a
pointer in a docstring): the ``loom`` package is the one that composes them."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import warehouse

ABOVE_WAREHOUSE = {"loom", "ingest_api", "dagster_project", "bench", "tests"}
# In text, the packages above as names: `ingest_api`, `dagster_project` and `bench` anywhere;
# `loom` (also the command and a schema) only as a module: `loom.cli`, `loom:up`, `-m loom`, or a
# string of its own (an argument after "-m").
NAMED_IN_TEXT = re.compile(
    r"\b(ingest_api|dagster_project|bench)\b|\bloom[.:][A-Za-z_]|-m\s+loom\b|\bimport\s+loom\b"
    r"|^[rbuf]*(?P<quote>['\"])loom(?P=quote)$"
)


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def packages_named_in_text(source: str) -> list[str]:
    """What a module's strings (docstrings included) and comments name of the packages above."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [
        match.group(0)
        for token in tokens
        if token.type in (tokenize.STRING, tokenize.COMMENT)
        for match in NAMED_IN_TEXT.finditer(token.string)
    ]


def warehouse_modules() -> list[Path]:
    modules = sorted(Path(warehouse.__file__).parent.rglob("*.py"))
    assert len(modules) > 10
    return modules


def test_warehouse_imports_nothing_from_the_packages_above_it() -> None:
    upward = {
        module.name: sorted(imported_packages(module) & ABOVE_WAREHOUSE)
        for module in warehouse_modules()
    }
    assert {name: packages for name, packages in upward.items() if packages} == {}


def test_warehouse_names_no_package_above_it_even_in_a_string() -> None:
    named = {
        module.name: packages_named_in_text(module.read_text()) for module in warehouse_modules()
    }
    assert {name: found for name, found in named.items() if found} == {}


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from ingest_api.main import create_app\n")
    assert imported_packages(module) == {"os", "ingest_api"}


def test_the_check_sees_names_in_strings_and_comments_but_not_the_command() -> None:
    source = '''"""Run by the retention job (dagster_project/retention.py)."""
SUBCOMMANDS = {"up": "loom.stack:up", "demo": "bench.demo:demo"}
ARGV = ["python", "-m", "loom", "serve"]  # started as ingest_api's service
HINT = "run `loom doctor`, then loom run --hour H"
SCHEMA = "CREATE SCHEMA IF NOT EXISTS loom"
'''
    assert packages_named_in_text(source) == [
        "dagster_project", "loom.s", "bench", '"loom"', "ingest_api"
    ]  # fmt: skip
