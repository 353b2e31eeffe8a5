"""Late landing files: a file that shows up for a closed, already-loaded hour gets the hour rerun.

The ingest API files records by the hour it *received* them, so late files are rare (a flush
straddling the hour, a restored file), but when one arrives after the hour was loaded the warehouse
would otherwise never see it. Hours never loaded are the schedule's (or ``loom run``'s) business.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from dagster_project.assets.raw import raw_asset_key
from dagster_project.jobs import hourly_pipeline
from dagster_project.partitions import hour_key
from dagster_project.resources import WarehouseResource
from warehouse.layout import PART_GLOB, STREAMS, Layout, hour_of_dir, is_hour_closed

# A file is renamed into place moments after its directory entry changes; look back this far
# past the previous scan so a rename racing the scan is still seen.
SCAN_OVERLAP_S = 5.0


def changed_closed_hours(layout: Layout, since: float) -> dict[tuple[str, datetime], float]:
    """(stream, hour) of closed, unretired hours whose files changed at or after ``since``, with
    the newest change. Renaming a file into place updates the file's ctime and its directory's
    mtime, so only directories touched since the last scan are listed."""
    changed: dict[tuple[str, datetime], float] = {}
    for stream in STREAMS:
        for hour_dir in layout.stream_dir(stream).glob("org_id=*/date=*/hour=*"):
            if hour_dir.stat().st_mtime < since:
                continue
            hour = hour_of_dir(hour_dir)
            if not is_hour_closed(hour) or layout.is_hour_retired(stream, hour):
                continue
            stats = [path.stat() for path in hour_dir.glob(PART_GLOB)]
            newest = max((max(s.st_mtime, s.st_ctime) for s in stats), default=0.0)
            if newest >= since:
                key = (stream, hour)
                changed[key] = max(newest, changed.get(key, 0.0))
    return changed


def loaded_as_of(instance: dg.DagsterInstance, stream: str, hour: datetime) -> float | None:
    """When the latest load of this hour listed its files, or None if it was never loaded."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_asset_key(stream), asset_partitions=[hour_key(hour)]),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    entry = records[0].asset_materialization.metadata.get("loaded_as_of")
    return float(entry.value) if entry is not None else None


@dg.sensor(
    job=hourly_pipeline,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reruns a closed hour when a landing file appears after the hour was loaded.",
)
def late_landing_files_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    scan_started = warehouse.layout.landing_clock()  # file times are the landing storage's
    since = float(context.cursor) - SCAN_OVERLAP_S if context.cursor else 0.0
    stale: dict[str, float] = {}
    for (stream, hour), newest in changed_closed_hours(warehouse.layout, since).items():
        loaded = loaded_as_of(context.instance, stream, hour)
        if loaded is not None and newest >= loaded:
            key = hour_key(hour)
            stale[key] = max(newest, stale.get(key, 0.0))
    return dg.SensorResult(
        # The run key names the newest file, so one late file triggers one rerun, not one a tick.
        run_requests=[
            dg.RunRequest(partition_key=key, run_key=f"{key}@{newest:.6f}")
            for key, newest in sorted(stale.items())
        ],
        cursor=str(scan_started),
        skip_reason=None if stale else "no late landing files",
    )
