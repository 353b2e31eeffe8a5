"""One raw-load asset per landed stream: ``raw_events``, ``raw_identities``, ``raw_sessions``,
``raw_session_aggregates``.

Each partition is one received hour; materializing it replaces that hour in ``raw.<stream>``
with the hour's visible landing files (warehouse.raw_load), so a rerun never duplicates a row.
The asset keys are the ones the dbt sources map to (see assets/dbt.py), so the UI draws the
lineage from landing to marts.
"""
# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
import duckdb
from dagster import AssetExecutionContext

from dagster_project.partitions import PIPELINE_ASSET, hours_between, is_micro_batch
from dagster_project.resources import WarehouseResource
from warehouse.layout import STREAMS, Layout, naive_utc
from warehouse.raw_load import (
    QUARANTINE_TABLE,
    StreamLoad,
    ensure_raw_table,
    load_hours,
    load_new_files,
)

QUARANTINE_CHECK = "no_quarantined_records"


def raw_asset_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{stream}")


def load_metadata(
    load: StreamLoad, retired_hours: Sequence[datetime], loaded_as_of: float | None
) -> dict[str, object]:
    """What a load records; a micro-batch's (``loaded_as_of`` None) leaves the hour to be loaded
    whole once it has closed, so the late-file sensor does not count it as the hour's load."""
    metadata: dict[str, object] = {
        "rows_loaded": load.rows_loaded,
        "rows_replaced": load.rows_replaced,
        "files_read": load.files_read,
        "late_records": load.late_records,
        "records_quarantined": load.records_quarantined,
        "duration_s": round(load.duration_s, 3),
        "hours_loaded": len(load.hours),
        # What `loom run --from --to` prints a line per hour from.
        "rows_by_hour": dg.MetadataValue.json(
            {f"{hour:%Y-%m-%dT%H:00}": rows for hour, rows in sorted(load.rows_by_hour.items())}
        ),
        # Hours whose landing files retention already deleted: their raw rows are the only copy.
        "retired_hours_kept": len(retired_hours),
    }
    if load.last_received_at is not None:
        metadata["newest_received_at"] = dg.MetadataValue.timestamp(
            load.last_received_at.replace(tzinfo=UTC)
        )
    if loaded_as_of is not None:
        # The sensor compares landing files against this: a file visible only after it may be
        # missing from the load.
        metadata["loaded_as_of"] = dg.MetadataValue.timestamp(loaded_as_of)
    return metadata


def load_window(
    con: duckdb.DuckDBPyConnection,
    layout: Layout,
    stream: str,
    start: datetime,
    end: datetime,
    load_id: str = "",
) -> tuple[StreamLoad, list[datetime]]:
    """Load every received hour of ``[start, end)`` in one read; returns the load and the retired
    hours kept.

    A backfill's window can span weeks of mostly empty hours: only hours with landing files, or
    with raw rows that a reload may have to clear, are loaded.
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
    retired = [hour for hour in hours if layout.is_hour_retired(stream, hour)]
    load = load_hours(con, layout, stream, [hour for hour in hours if hour not in retired], load_id)
    return load, retired


def quarantine_check(
    con: duckdb.DuckDBPyConnection, stream: str, load: StreamLoad
) -> dg.AssetCheckResult:
    """Fails while any record of the loaded hours sits in quarantine; lists the first few."""
    rows = con.execute(
        f"""
        SELECT _file, line_number, reason FROM {QUARANTINE_TABLE}
        WHERE stream = ? AND _received_hour IN (SELECT unnest(?))
        ORDER BY _file, line_number LIMIT 20
        """,
        [stream, list(load.hours)],
    ).fetchall()
    table = "\n".join(
        ["| file | line | reason |", "|---|---|---|"]
        + [f"| {file} | {line} | {reason} |" for file, line, reason in rows]
    )
    return dg.AssetCheckResult(
        check_name=QUARANTINE_CHECK,
        passed=load.records_quarantined == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "records_quarantined": load.records_quarantined,
            "first_quarantined": dg.MetadataValue.md(table if rows else "none"),
        },
        description=f"{load.records_quarantined} record(s) of the hours in {QUARANTINE_TABLE}",
    )


def build_raw_asset(stream: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key(stream),
        **PIPELINE_ASSET,
        group_name="raw",
        kinds={"duckdb"},
        description=(
            f"Landed `{stream}` records of one received hour, loaded into `raw.{stream}`. "
            "A rerun replaces the hour. Records that cannot be loaded go to "
            f"`{QUARANTINE_TABLE}` with their file, line and reason; the rest loads."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                QUARANTINE_CHECK,
                asset=raw_asset_key(stream),
                description="No record of the hour was quarantined.",
            )
        ],
    )
    def raw_stream(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        loaded_as_of = warehouse.layout.landing_clock()
        window = context.partition_time_window
        with warehouse.connect() as con:
            if is_micro_batch(context):
                hours = hours_between(window.start, window.end)
                load = load_new_files(con, warehouse.layout, stream, hours, context.run.run_id)
                retired: list[datetime] = []
            else:
                load, retired = load_window(
                    con, warehouse.layout, stream, window.start, window.end, context.run.run_id
                )
            check = quarantine_check(con, stream, load)
        metadata = load_metadata(load, retired, None if is_micro_batch(context) else loaded_as_of)
        context.log.info(
            f"raw.{stream}: {load.rows_loaded} rows from {load.files_read} files "
            f"over {len(load.hours)} hour(s), {load.late_records} late, "
            f"{load.records_quarantined} quarantined"
        )
        if load.records_quarantined:
            context.log.warning(
                f"{load.records_quarantined} {stream} record(s) quarantined in "
                f"{QUARANTINE_TABLE}; the rest of the hour loaded"
            )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return raw_stream


raw_assets = [build_raw_asset(stream) for stream in STREAMS]
