"""Fixtures for the dbt project: warehouses built from the hand-made scenario.

dbt invocations cost seconds each, so the expensive setups are shared: one full ``dbt build``
per test session (:func:`built`), and the windowed warehouses of test_incremental.py per module.
All invocations share one dbt target directory, so the project is parsed once per set of vars.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbt_project.utils import scenario
from warehouse import dbt
from warehouse.layout import Layout
from warehouse.raw_load import load_landed


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
