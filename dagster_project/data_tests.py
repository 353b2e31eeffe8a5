"""The daily data-test job: every dbt data test over the whole history, as the assets' checks.

The hourly build runs only the tests tagged ``hourly``, over the rows its window touched, so that
an hour costs what its data costs. Once a day this job runs all of them unwindowed (``dbt test``
in this process); each result is recorded as an evaluation of the asset check it belongs to, so
the UI shows a failing check on the asset whatever job found it.
"""
# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import OpExecutionContext

from dagster_project.assets.dbt import dagster_events_of_dbt, raise_unless_successful
from dagster_project.jobs import WRITER_TAGS
from dagster_project.project import dbt_project
from dagster_project.resources import WAREHOUSE_POOL, WarehouseResource

DATA_TESTS = ["test", "--exclude-resource-type", "unit_test"]


# In the warehouse pool although it only reads: between two runs, it sees no model half built.
@dg.op(pool=WAREHOUSE_POOL, out=dg.Out(dg.Nothing))
def run_data_tests(context: OpExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
    """``dbt test``: every data test of the project over all rows."""
    manifest = json.loads(dbt_project.manifest_path.read_bytes())
    target = Path(tempfile.mkdtemp(prefix=f"dbt-tests-{context.run.run_id[:8]}-"))
    result, events = dagster_events_of_dbt(context, DATA_TESTS, warehouse.layout, manifest, target)
    yield from events
    failed = [e for e in events if isinstance(e, dg.AssetCheckEvaluation) and not e.passed]
    context.log.info(f"{len(events)} data tests, {len(failed)} failed")
    raise_unless_successful(result, DATA_TESTS, target)


@dg.job(
    tags=WRITER_TAGS,
    description="Daily: every dbt data test over the whole history (the hourly runs check only "
    "what their window touched).",
)
def data_tests() -> None:
    run_data_tests()


data_tests_schedule = dg.ScheduleDefinition(
    name="data_tests_schedule",
    job=data_tests,
    cron_schedule="45 3 * * *",  # after the retention job, before the business day in UTC
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs every data test over the whole history once a day.",
)
