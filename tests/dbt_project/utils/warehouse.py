"""Reading a test warehouse, and running dbt windows on it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from warehouse import dbt
from warehouse.duck import connect_reader
from warehouse.layout import Layout


def query(layout: Layout, sql: str, parameters: list | None = None) -> list[tuple]:
    with connect_reader(layout) as con:
        return con.execute(sql, parameters or []).fetchall()


def query_dicts(layout: Layout, sql: str, parameters: list | None = None) -> list[dict]:
    with connect_reader(layout) as con:
        cursor = con.execute(sql, parameters or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def marts(layout: Layout) -> dict[str, list[str]]:
    """Every analytics table and view as sorted row reprs, to compare two warehouses exactly."""
    with connect_reader(layout) as con:
        names = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_catalog ="
                " 'warehouse' and table_schema = 'analytics' order by table_name"
            ).fetchall()
        ]
        return {
            name: sorted(map(repr, con.execute(f"select * from analytics.{name}").fetchall()))
            for name in names
        }


def run_window(
    layout: Layout, window: tuple[datetime, datetime], target: Path, command: str = "run"
) -> None:
    dbt.run_dbt([command], layout=layout, vars=dbt.window_vars(*window), target_path=target)
