"""Shared, expensive setup: the warehouse built hour by hour through Dagster (session-scoped: the
pipeline tests and the UI test both read it)."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from dagster_project.cli import run
from tests.dagster_project.utils.dataset import H1, H2, land_hour_1, land_hour_2
from tests.dagster_project.utils.in_order import InOrder
from tests.dagster_project.utils.pipeline import PipelineWarehouse, loom_data_dir


@pytest.fixture(scope="session")
def in_order(tmp_path_factory: pytest.TempPathFactory) -> InOrder:
    warehouse = PipelineWarehouse.create(tmp_path_factory.mktemp("in_order") / "data")
    land_hour_1(warehouse.layout)
    land_hour_2(warehouse.layout)
    first_runs = warehouse.run(H1)
    after_h1 = warehouse.marts()
    # The pipeline host keeps nothing that cannot be rebuilt: without its scratch space, the
    # rerun gives the same marts (test_rerunning_an_hour_changes_nothing).
    shutil.rmtree(warehouse.layout.scratch_dir)
    warehouse.run(H1)
    after_h1_again = warehouse.marts()
    # The second hour goes through `loom run` itself, into the data dir's DAGSTER_HOME (where the UI
    # test's `dagster dev` finds it). The first two use an in-memory instance: every run records
    # ~600 events (one per dbt check), which SQLite on disk makes twice as slow.
    with loom_data_dir(warehouse.layout.data_dir):
        result = CliRunner().invoke(run, ["--hour", H2.isoformat()])
    assert result.exit_code == 0, result.output
    return InOrder(
        warehouse, first_runs, after_h1, after_h1_again, warehouse.marts(), result.output
    )
