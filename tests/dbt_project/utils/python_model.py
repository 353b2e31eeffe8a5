"""Running a dbt Python model of the project in-process, on tables of a DuckDB connection.

dbt-duckdb runs a Python model by calling its ``model(dbt, session)`` with the dbt connection as
``session`` and an object whose ``ref(name)`` is ``session.query("select * from <name>")``; this
does the same with each ref a table of ``con``, so a test runs the model's own SQL and Python on
rows it chose, as a dbt unit test does for a SQL model (dbt has none for Python models).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.dbt import PROJECT_DIR


def load_model(relative_path: str) -> ModuleType:
    path = Path(PROJECT_DIR, "models", relative_path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ModelContext:
    """The ``dbt`` argument of a Python model: its config, its refs as tables of ``con``, and
    for an incremental run the model's own table (``this``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, this: str | None = None) -> None:
        self.con = con
        self.this = this
        self.is_incremental = this is not None

    def config(self, **_config: Any) -> None:
        pass

    def ref(self, name: str) -> duckdb.DuckDBPyRelation:
        return self.con.query(f"select * from {name}")


def run_model(
    model: ModuleType, con: duckdb.DuckDBPyConnection, this: str | None = None
) -> list[dict]:
    """The model's rows, from the table or DuckDB relation it returns."""
    result = model.model(ModelContext(con, this), con)
    table = result if isinstance(result, pa.Table) else result.to_arrow_table()
    return table.to_pylist()
