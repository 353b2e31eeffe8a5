"""Hourly partitions: one partition per UTC hour of *receipt* (the landing layout's hour)."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from dagster_project.resources import WAREHOUSE_POOL
from warehouse.dbt import window_vars
from warehouse.layout import floor_hour, naive_utc
from warehouse.settings import get_settings

# Partition keys look like 2026-01-18-09:00 (Dagster's hourly default, kept so the UI and
# `dagster asset materialize --partition` accept the same strings as `loom run`).
HOUR_KEY_FORMAT = "%Y-%m-%d-%H:%M"

# end_offset=1 makes the still-open hour a partition too, so a demo or a test can load what it
# just sent; the schedule only ever requests the hour that has closed (see schedules.py).
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=floor_hour(get_settings().pipeline_start), end_offset=1, timezone="UTC"
)
# What the pipeline's own assets (raw loads, compaction, publishing) share: partitioned by hour, a
# backfill loads and builds its hours in one run, and they write the lake, one writer at a time.
PIPELINE_ASSET = {
    "partitions_def": hourly_partitions,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "pool": WAREHOUSE_POOL,
}


# The job that builds what landed since the last batch, a few times an hour (micro_batches.py): the
# same assets, each loading or building only the new records of its hours.
MICRO_BATCH_JOB = "micro_batch"


def is_micro_batch(context: dg.AssetExecutionContext) -> bool:
    return context.job_name == MICRO_BATCH_JOB


def hour_key(hour: datetime) -> str:
    return floor_hour(hour).strftime(HOUR_KEY_FORMAT)


def hour_of_key(partition_key: str) -> datetime:
    return datetime.strptime(partition_key, HOUR_KEY_FORMAT)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Every hour in ``[start, end)``."""
    hour, end = floor_hour(start), naive_utc(end)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def dbt_window_vars(window: dg.TimeWindow) -> dict[str, str]:
    """The dbt vars of a run's partition window: one hour, or a whole backfill range."""
    return window_vars(*window_bounds(window))


def window_bounds(window: dg.TimeWindow) -> tuple[datetime, datetime]:
    """A partition window as naive UTC bounds, the warehouse's convention."""
    return naive_utc(window.start), naive_utc(window.end)
