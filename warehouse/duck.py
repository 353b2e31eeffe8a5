"""DuckDB access. Only the pipeline (Dagster and dbt) opens the warehouse file for writing."""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.layout import Layout


def connect_warehouse(
    layout: Layout | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    path: Path = (layout or Layout.from_settings()).warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    # Every timestamp in the warehouse is naive UTC; make DuckDB's own clock functions agree.
    con.execute("SET TimeZone = 'UTC'")
    return con
