"""Composes the pipeline; each piece lives in its own module."""

from __future__ import annotations

import dagster as dg

from dagster_project.alerts import (
    alert_deliveries_sensor,
    release_health_alerts,
    release_health_alerts_sensor,
)
from dagster_project.assets.dbt import dbt_models
from dagster_project.assets.lake import compacted_lake_files, published_snapshot
from dagster_project.assets.raw import raw_assets
from dagster_project.data_tests import data_tests, data_tests_schedule
from dagster_project.jobs import hourly_pipeline
from dagster_project.micro_batches import fresh_while_data_lands, micro_batch, micro_batch_sensor
from dagster_project.pipeline_alerts import failing_checks_alert, run_failure_alert
from dagster_project.pipeline_metrics import pipeline_metrics_sensor
from dagster_project.resources import WarehouseResource
from dagster_project.retention import retention
from dagster_project.schedules import hourly_pipeline_schedule, retention_schedule
from dagster_project.sensors import late_landing_files_sensor

defs = dg.Definitions(
    assets=[
        *raw_assets,
        dbt_models,
        compacted_lake_files,
        published_snapshot,
        release_health_alerts,
    ],
    asset_checks=[fresh_while_data_lands],
    jobs=[hourly_pipeline, micro_batch, retention, data_tests],
    schedules=[hourly_pipeline_schedule, retention_schedule, data_tests_schedule],
    sensors=[
        late_landing_files_sensor,
        micro_batch_sensor,
        release_health_alerts_sensor,
        alert_deliveries_sensor,
        run_failure_alert,
        failing_checks_alert,
        pipeline_metrics_sensor,
    ],
    resources={"warehouse": WarehouseResource()},
    # Steps share one process: they run one at a time anyway (one writer), and a process per
    # step would pay Dagster's and dbt's import time, and dbt's parse, again for each.
    executor=dg.in_process_executor,
)
