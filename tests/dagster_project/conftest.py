"""Shared, expensive setup: the warehouse built hour by hour through Dagster (session-scoped, as
the pipeline tests and the UI test both read it)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.dagster_project.dataset import H1, H2, land_hour_1, land_hour_2
from tests.dagster_project.pipeline import TestWarehouse


@dataclass
class InOrder:
    warehouse: TestWarehouse
    first_runs: list
    after_h1: dict
    after_h1_again: dict
    after_h2: dict


@pytest.fixture(scope="session")
def in_order(tmp_path_factory: pytest.TempPathFactory) -> InOrder:
    warehouse = TestWarehouse.create(tmp_path_factory.mktemp("in_order") / "data", persistent=True)
    land_hour_1(warehouse.layout)
    land_hour_2(warehouse.layout)
    first_runs = warehouse.run(H1)
    after_h1 = warehouse.marts()
    warehouse.run(H1)
    after_h1_again = warehouse.marts()
    warehouse.run(H2)
    return InOrder(warehouse, first_runs, after_h1, after_h1_again, warehouse.marts())
