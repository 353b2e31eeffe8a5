"""Fixtures for the dbt project: warehouses built from the hand-made scenario.

dbt invocations cost seconds each, so the expensive setups are shared: one full ``dbt build``
per test session (:func:`built`), and the windowed warehouses of test_incremental.py per module.
All invocations share one dbt target directory, so the project is parsed once per set of vars.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.dbt_project import scenario
from warehouse import dbt
from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.raw_load import load_landed


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


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt-target")


@pytest.fixture(scope="session")
def scenario_layout_factory(tmp_path_factory: pytest.TempPathFactory):
    """A fresh data dir with the scenario landed and loaded into raw.*."""

    def make(name: str) -> Layout:
        layout = Layout(tmp_path_factory.mktemp(name))
        scenario.land(layout)
        dbt.prepare_warehouse(layout)
        load_landed(layout)
        return layout

    return make


@pytest.fixture(scope="session")
def built(scenario_layout_factory, dbt_target: Path) -> Iterator[Layout]:
    """The scenario after one unwindowed ``dbt build``: every model, data test and unit test."""
    layout = scenario_layout_factory("built")
    dbt.build(layout, target_path=dbt_target)
    yield layout


def run_window(
    layout: Layout, window: tuple[datetime, datetime], target: Path, command: str = "run"
) -> None:
    dbt.run_dbt([command], layout=layout, vars=dbt.window_vars(*window), target_path=target)
