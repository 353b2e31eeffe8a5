"""Daily retention: prune individual sessions and retire landing files that are safely loaded;
then expire lake snapshots no reader can still be on.

Hourly aggregates are never touched: ``prune_sessions`` (a dbt macro of the project) deletes only
rows of ``fct_sessions`` and publishes the result at once, and the landing files go only once every
one of them is in ``raw.*``.
"""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.
import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
from dagster import OpExecutionContext
from pydantic import Field

from dagster_project.jobs import WRITER_TAGS
from dagster_project.resources import WAREHOUSE_POOL, WarehouseResource
from warehouse.dbt import run_dbt
from warehouse.landing_retention import remove_stale_temp_files, retire_loaded_landing_files
from warehouse.layout import naive_utc
from warehouse.maintenance import (
    SnapshotRetention,
    expire_snapshots,
    expiry_line,
    expiry_metadata,
    live_data_files,
)
from warehouse.published import latest_published


class RetentionConfig(dg.Config):
    as_of: str | None = Field(
        default=None,
        description="Reference time (ISO 8601, UTC) the ages are measured from; default: now.",
    )

    def reference_time(self) -> datetime:
        return naive_utc(datetime.fromisoformat(self.as_of) if self.as_of else datetime.now(UTC))


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    (found,) = con.execute(
        "select count(*) from information_schema.tables"
        " where table_catalog = current_database() and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return found > 0


def prune_count(con: duckdb.DuckDBPyConnection) -> tuple[int, datetime | None, int]:
    """(prunes so far, cutoff of the latest, sessions it deleted) from ``ops.session_prunes``."""
    if not table_exists(con, "ops", "session_prunes"):
        return 0, None, 0
    count, cutoff, deleted = con.execute(
        "select count(*), arg_max(cutoff, pruned_at), arg_max(sessions_deleted, pruned_at) "
        "from ops.session_prunes"
    ).fetchone()
    return count, cutoff, deleted or 0


@dg.op(pool=WAREHOUSE_POOL, out=dg.Out(dg.Nothing))
def prune_sessions(
    context: OpExecutionContext, config: RetentionConfig, warehouse: WarehouseResource
) -> dg.Output:
    """dbt's ``prune_sessions`` run-operation: delete individual sessions past the retention."""
    layout, days = warehouse.layout, warehouse.settings.session_retention_days
    with warehouse.connect() as con:
        built = table_exists(con, "analytics", "fct_sessions")
        prunes_before, _, _ = prune_count(con)
    if not built:
        return dg.Output(None, metadata={"sessions_deleted": 0, "note": "no sessions built yet"})
    args = {"days": days, "as_of": f"{config.reference_time():%Y-%m-%d %H:%M:%S}"}
    # The operation publishes its result: readers see the pruned marts now, not only after the
    # next hourly run.
    run_dbt(["run-operation", "prune_sessions", "--args", json.dumps(args)], layout=layout)
    with warehouse.connect() as con:
        prunes_after, cutoff, deleted = prune_count(con)
        if prunes_after == prunes_before:
            raise dg.Failure("prune_sessions ran but recorded no prune in ops.session_prunes")
        snapshot_id = latest_published(con)
    context.log.info(
        f"deleted {deleted} sessions that started before {cutoff}; published snapshot {snapshot_id}"
    )
    return dg.Output(
        None,
        metadata={
            "sessions_deleted": deleted,
            "cutoff": f"{cutoff}",
            "retention_days": days,
            "published_snapshot_id": snapshot_id,
        },
    )


@dg.op(pool=WAREHOUSE_POOL, out=dg.Out(dg.Nothing))
def retire_landing_files(
    context: OpExecutionContext, config: RetentionConfig, warehouse: WarehouseResource
) -> dg.Output:
    """Delete landing files past the landing retention whose rows are all in ``raw.*``, and the
    dot-files of writes that died (of any host) older than the temp-file bound."""
    settings = warehouse.settings
    days = settings.landing_retention_days
    cutoff = config.reference_time() - timedelta(days=days)
    with warehouse.connect() as con:
        report = retire_loaded_landing_files(con, warehouse.layout, cutoff)
    temp_max_age_s = settings.landing_temp_file_max_age_minutes * 60
    temp_removed = remove_stale_temp_files(warehouse.layout, temp_max_age_s)
    context.log.info(
        f"deleted {report.files_deleted} landing files from before {cutoff}, and {temp_removed} "
        f"dot-files of writes that died"
    )
    retired = sorted(
        (stream, hour) for stream, hours in report.hours_retired.items() for hour in hours
    )
    return dg.Output(
        None,
        metadata={
            "files_deleted": report.files_deleted,
            "stale_temp_files_deleted": temp_removed,
            "bytes_deleted": report.bytes_deleted,
            "hours_retired": len(retired),
            "cutoff": f"{cutoff:%Y-%m-%d %H:%M:%S}",
            "retention_days": days,
            "retired": dg.MetadataValue.md(_hours_table(retired, ("stream", "hour"))),
            "kept_not_loaded": dg.MetadataValue.md(
                _hours_table(report.hours_kept_unloaded, ("stream", "hour", "unloaded files"))
            ),
        },
    )


def _hours_table(rows: list[tuple], header: tuple[str, ...]) -> str:
    if not rows:
        return "none"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| "
        + " | ".join(
            f"{value:%Y-%m-%d %H:00}" if isinstance(value, datetime) else str(value)
            for value in row
        )
        + " |"
        for row in rows
    ]
    return "\n".join(lines)


@dg.op(pool=WAREHOUSE_POOL, ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def expire_lake_snapshots(context: OpExecutionContext, warehouse: WarehouseResource) -> dg.Output:
    """Expire the lake snapshots no reader can still be on (warehouse.maintenance
    .SnapshotRetention), then delete the files only they referenced and orphaned files."""
    with warehouse.connect() as con:
        expiry = expire_snapshots(con, SnapshotRetention.of(warehouse.settings))
        files = sum(live_data_files(con).values())
    context.log.info(expiry_line(expiry))
    return dg.Output(None, metadata={**expiry_metadata(expiry), "live_files": files})


@dg.job(
    tags=WRITER_TAGS,
    description=(
        "Daily: prune individual sessions older than LOOM_SESSION_RETENTION_DAYS (published at "
        "once), delete loaded landing files older than LOOM_LANDING_RETENTION_DAYS and dead "
        "writes' dot-files older than LOOM_LANDING_TEMP_FILE_MAX_AGE_MINUTES, then expire lake "
        "snapshots and delete the files no reader can need. Aggregates are never touched."
    ),
)
def retention() -> None:
    expire_lake_snapshots(prune_sessions())
    retire_landing_files()
