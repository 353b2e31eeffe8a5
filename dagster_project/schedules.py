"""Schedules: the hourly pipeline a few minutes past each hour, retention once a day."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from dagster_project.jobs import hourly_pipeline
from dagster_project.partitions import hour_key, hourly_partitions
from dagster_project.retention import retention
from warehouse.layout import floor_hour, naive_utc

# Later than HOUR_CLOSE_GRACE past the hour, so the previous hour is closed when it runs.
SCHEDULE_MINUTE = 5


# Not build_schedule_from_partitioned_job: that requests the newest partition, which is the
# still-open hour here (the partitions have end_offset=1 so the open hour can be run on demand).
@dg.schedule(
    job=hourly_pipeline,
    cron_schedule=f"{SCHEDULE_MINUTE} * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Materializes the hour that just closed.",
)
def hourly_pipeline_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    closed_hour = floor_hour(naive_utc(context.scheduled_execution_time)) - timedelta(hours=1)
    key = hour_key(closed_hour)
    if closed_hour < naive_utc(hourly_partitions.start):
        return dg.SkipReason(f"{key} is before the pipeline's first hour")
    return dg.RunRequest(partition_key=key, run_key=key)


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention,
    # Between two hourly runs; the warehouse pool would queue it behind one anyway.
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Prunes old sessions and retires loaded landing files once a day.",
)
