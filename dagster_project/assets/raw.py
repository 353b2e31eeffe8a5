"""One raw-load asset per landed stream: ``raw_events``, ``raw_identities``, ``raw_sessions``.

Each partition is one received hour; materializing it replaces that hour in ``raw.<stream>``
with the hour's visible landing files (warehouse.raw_load), so a rerun never duplicates a row.
The asset keys are the ones the dbt sources map to (see assets/dbt.py), so the UI draws the
lineage from landing to marts.
"""
# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import time
from collections.abc import Sequence
from datetime import datetime

import dagster as dg
import duckdb
from dagster import AssetExecutionContext

from dagster_project.partitions import hourly_partitions, hours_between, naive_utc
from dagster_project.resources import PIPELINE_GROUP, WAREHOUSE_POOL, WarehouseResource
from warehouse.layout import STREAMS, Layout
from warehouse.raw_load import HourLoad, ensure_raw_table, load_hour


def raw_asset_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{stream}")


def load_metadata(
    loads: Sequence[HourLoad], retired_hours: Sequence[datetime], loaded_as_of: float
) -> dict[str, object]:
    return {
        "rows_loaded": sum(load.rows_loaded for load in loads),
        "rows_replaced": sum(load.rows_replaced for load in loads),
        "files_read": sum(load.files_read for load in loads),
        "late_records": sum(load.late_records for load in loads),
        "duration_s": round(sum(load.duration_s for load in loads), 3),
        "hours_loaded": len(loads),
        # Hours whose landing files retention already deleted: their raw rows are the only copy.
        "retired_hours_kept": len(retired_hours),
        # The sensor compares landing files against this: a file visible only after it may be
        # missing from the load.
        "loaded_as_of": dg.MetadataValue.timestamp(loaded_as_of),
    }


def load_window(
    con: duckdb.DuckDBPyConnection, layout: Layout, stream: str, start: datetime, end: datetime
) -> tuple[list[HourLoad], list[datetime]]:
    """Load every received hour of ``[start, end)``; returns the loads and the retired hours kept.

    A backfill's window can span weeks of mostly empty hours: only hours with landing files, or
    with raw rows that a reload may have to clear, are visited.
    """
    hours = hours_between(start, end)
    if len(hours) > 1:
        ensure_raw_table(con, stream)
        previously_loaded = {
            hour
            for (hour,) in con.execute(
                f"SELECT DISTINCT _received_hour FROM raw.{stream} "
                "WHERE _received_hour >= ? AND _received_hour < ?",
                [hours[0], naive_utc(end)],
            ).fetchall()
        }
        wanted = layout.landed_hours(stream) | previously_loaded
        hours = [hour for hour in hours if hour in wanted]
    loads, retired = [], []
    for hour in hours:
        if layout.is_hour_retired(stream, hour):
            retired.append(hour)
        else:
            loads.append(load_hour(con, layout, stream, hour))
    return loads, retired


def build_raw_asset(stream: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key(stream),
        partitions_def=hourly_partitions,
        # A backfill loads its hours in one run (then dbt builds the wide window once).
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        group_name=PIPELINE_GROUP,
        kinds={"duckdb"},
        description=(
            f"Landed `{stream}` records of one received hour, loaded into `raw.{stream}`. "
            "A rerun replaces the hour."
        ),
    )
    def raw_stream(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        loaded_as_of = time.time()
        window = context.partition_time_window
        with warehouse.connect() as con:
            loads, retired = load_window(con, warehouse.layout, stream, window.start, window.end)
        metadata = load_metadata(loads, retired, loaded_as_of)
        context.log.info(
            f"raw.{stream}: {metadata['rows_loaded']} rows from {metadata['files_read']} files "
            f"over {len(loads)} hour(s), {metadata['late_records']} late"
        )
        return dg.MaterializeResult(metadata=metadata)

    return raw_stream


raw_assets = [build_raw_asset(stream) for stream in STREAMS]
