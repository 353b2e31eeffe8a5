"""Micro-batches: what landed since the last batch, loaded, built and published within minutes.

The hourly schedule builds an hour once it has closed, so a crash seen at 10:01 would reach
readers after 11:05. Every ``LOOM_MICRO_BATCH_SECONDS`` (60) the sensor looks at the hours still
open; when files landed there since its last look, it runs the ``micro_batch`` job: the same
assets as the hourly job, where each raw load appends only the files its ledger does not hold yet
(``warehouse.raw_load.load_new_files``), dbt builds the same models over the received-time window
of those rows (no tests: the closed hour's run has them), and the lake is compacted and published.
The hourly run of a closed hour stays the final word: it reloads the hour whole and rebuilds it,
giving the marts a build that never saw a micro-batch gives (tests/dagster_project/
test_micro_batches.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from dagster_project.assets.raw import raw_assets
from dagster_project.framework_workarounds import partition_range_tags
from dagster_project.jobs import WRITER_TAGS
from dagster_project.partitions import MICRO_BATCH_JOB, hour_key
from dagster_project.resources import WarehouseResource
from dagster_project.sensors import SCAN_OVERLAP_S
from warehouse.layout import PART_GLOB, STREAMS, Layout, floor_hour, is_hour_closed, naive_utc
from warehouse.settings import get_settings

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

micro_batch = dg.define_asset_job(
    MICRO_BATCH_JOB,
    selection=dg.AssetSelection.all().without_checks()
    | dg.AssetSelection.checks_for_assets(*raw_assets),
    tags=WRITER_TAGS,
    description=(
        "Load the landing files of the open hours that are not loaded yet, build the same dbt "
        "models over their received-time window, compact and publish."
    ),
)


def open_hours_with_new_files(
    layout: Layout, since: float, now: datetime | None = None
) -> list[datetime]:
    """The hours not closed yet (the current one, and the previous one during its grace) where a
    landing file appeared at or after ``since``. A file renamed into place updates its ctime and
    its directory's mtime, so only those directories are listed."""
    now = naive_utc(now or datetime.now(UTC))
    candidates = [floor_hour(now) - timedelta(hours=1), floor_hour(now)]
    hours = []
    for hour in candidates:
        if is_hour_closed(hour, now):
            continue
        pattern = f"org_id=*/date={hour:%Y-%m-%d}/hour={hour:%H}"
        if any(
            _changed_since(folder, since)
            for stream in STREAMS
            for folder in layout.stream_dir(stream).glob(pattern)
        ):
            hours.append(hour)
    return hours


def _changed_since(folder: Path, since: float) -> bool:
    if folder.stat().st_mtime < since:
        return False
    return any(
        max(stat.st_mtime, stat.st_ctime) >= since
        for stat in (path.stat() for path in folder.glob(PART_GLOB))
    )


def micro_batch_request(hours: list[datetime]) -> dg.RunRequest:
    """The run of the micro-batch job over ``hours`` (one, or two around the hour's turn)."""
    if len(hours) == 1:
        return dg.RunRequest(partition_key=hour_key(hours[0]))
    return dg.RunRequest(tags=partition_range_tags(hour_key(hours[0]), hour_key(hours[-1])))


@dg.sensor(
    job=micro_batch,
    minimum_interval_seconds=get_settings().micro_batch_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every LOOM_MICRO_BATCH_SECONDS: when files landed in an open hour since the last look, "
        "runs a micro-batch of them (one at a time)."
    ),
)
def micro_batch_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    scan_started = time.time()
    since = float(context.cursor) - SCAN_OVERLAP_S if context.cursor else 0.0
    hours = open_hours_with_new_files(warehouse.layout, since)
    if not hours:
        return dg.SensorResult(
            skip_reason="nothing landed since the last look", cursor=str(scan_started)
        )
    unfinished = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=MICRO_BATCH_JOB, statuses=UNFINISHED), limit=1
    )
    if unfinished:
        # The cursor stays: what landed is picked up once that batch is done.
        return dg.SkipReason(f"micro-batch {unfinished[0].run_id[:8]} has not finished yet")
    return dg.SensorResult(run_requests=[micro_batch_request(hours)], cursor=str(scan_started))
