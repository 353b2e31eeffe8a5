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

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from dagster_project.assets.lake import published_snapshot
from dagster_project.assets.raw import raw_assets
from dagster_project.framework_workarounds import partition_range_tags
from dagster_project.jobs import WRITER_TAGS
from dagster_project.partitions import MICRO_BATCH_JOB, hour_key
from dagster_project.resources import WarehouseResource
from dagster_project.run_owners import release_runs_of_dead_owners
from dagster_project.sensors import SCAN_OVERLAP_S
from warehouse.layout import PART_GLOB, STREAMS, Layout, floor_hour, is_hour_closed, naive_utc
from warehouse.settings import get_settings

CADENCE_S = get_settings().micro_batch_seconds
# The marts may lag the landing files by this many cadences before the freshness check fails.
STALE_AFTER_CADENCES = 3
FRESHNESS_CHECK = "fresh_while_data_lands"

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


def newest_landing(layout: Layout, now: datetime | None = None) -> float | None:
    """When the newest landing file of the current and the previous hour became visible (its
    ctime: renamed into place); None when none did."""
    now = naive_utc(now or datetime.now(UTC))
    newest = None
    for hour in (floor_hour(now) - timedelta(hours=1), floor_hour(now)):
        pattern = f"org_id=*/date={hour:%Y-%m-%d}/hour={hour:%H}/{PART_GLOB}"
        for stream in STREAMS:
            for path in layout.stream_dir(stream).glob(pattern):
                newest = max(newest or 0.0, path.stat().st_ctime)
    return newest


def freshness(
    instance: dg.DagsterInstance, layout: Layout, now: float | None = None
) -> dg.AssetCheckEvaluation:
    """Whether the published marts keep up with what lands: they fail the check when files have
    landed that the newest publish does not hold, and it holds nothing newer than
    STALE_AFTER_CADENCES cadences ago."""
    now = now or time.time()
    limit_s = STALE_AFTER_CADENCES * CADENCE_S
    landed = newest_landing(layout, datetime.fromtimestamp(now, UTC))
    event = instance.get_latest_materialization_event(published_snapshot.key)
    entry = None if event is None else event.asset_materialization.metadata.get("data_as_of")
    data_as_of = None if entry is None else float(entry.value)
    waiting = landed is not None and (data_as_of is None or landed > data_as_of)
    lag_s = None if data_as_of is None else now - data_as_of
    passed = not waiting or (lag_s is not None and lag_s <= limit_s)
    if not waiting:
        description = "nothing landed that the newest publish does not hold"
    elif passed:
        description = f"the newest publish holds data up to {lag_s:.0f} s ago (limit {limit_s} s)"
    else:
        behind = "nothing published" if lag_s is None else f"data up to {lag_s:.0f} s ago"
        description = f"files landed, and the newest publish holds {behind} (limit {limit_s} s)"
    metadata: dict[str, object] = {"limit_s": limit_s}
    if lag_s is not None:
        metadata["data_age_s"] = round(lag_s, 1)
    if landed is not None:
        metadata["newest_landing"] = dg.MetadataValue.timestamp(landed)
    return dg.AssetCheckEvaluation(
        asset_key=published_snapshot.key,
        check_name=FRESHNESS_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


@dg.asset_check(
    asset=published_snapshot,
    name=FRESHNESS_CHECK,
    description=(
        f"Fails when files have landed that the published marts do not hold and the newest "
        f"publish is older than {STALE_AFTER_CADENCES} micro-batch cadences. The micro-batch "
        "sensor evaluates it at every look."
    ),
)
def fresh_while_data_lands(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    evaluation = freshness(context.instance, warehouse.layout)
    return dg.AssetCheckResult(
        passed=evaluation.passed,
        severity=evaluation.severity,
        description=evaluation.description,
        metadata=evaluation.metadata,
    )


@dg.sensor(
    job=micro_batch,
    minimum_interval_seconds=CADENCE_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every LOOM_MICRO_BATCH_SECONDS: when files landed in an open hour since the last look, "
        "runs a micro-batch of them (one at a time)."
    ),
)
def micro_batch_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    scan_started = warehouse.layout.landing_clock()  # file times are the landing storage's
    # A batch whose worker was killed holds the warehouse slot until it is let go.
    release_runs_of_dead_owners(context.instance)
    checked = [freshness(context.instance, warehouse.layout)]
    since = float(context.cursor) - SCAN_OVERLAP_S if context.cursor else 0.0
    hours = open_hours_with_new_files(warehouse.layout, since)
    if not hours:
        return dg.SensorResult(
            skip_reason="nothing landed since the last look",
            cursor=str(scan_started),
            asset_events=checked,
        )
    unfinished = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=MICRO_BATCH_JOB, statuses=UNFINISHED), limit=1
    )
    if unfinished:
        # The cursor stays: what landed is picked up once that batch is done.
        return dg.SensorResult(
            skip_reason=f"micro-batch {unfinished[0].run_id[:8]} has not finished yet",
            cursor=context.cursor,
            asset_events=checked,
        )
    return dg.SensorResult(
        run_requests=[micro_batch_request(hours)], cursor=str(scan_started), asset_events=checked
    )
