"""The last steps of every run: compact the lake's files, then publish its snapshot to readers."""
# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import time
from datetime import UTC

import dagster as dg
from dagster import AssetExecutionContext

from dagster_project.assets.dbt import dbt_models
from dagster_project.partitions import PIPELINE_ASSET, is_micro_batch
from dagster_project.resources import WarehouseResource
from warehouse.maintenance import (
    SnapshotRetention,
    expire_snapshots,
    expiry_line,
    expiry_metadata,
    live_data_files,
    maintain_after_run,
)
from warehouse.published import publish
from warehouse.raw_load import newest_built


@dg.asset(
    deps=list(dbt_models.keys),
    **PIPELINE_ASSET,
    group_name="maintenance",
    kinds={"ducklake"},
    description=(
        "The lake's data files after the run, compacted: files with deletes rewritten and small "
        "adjacent files merged (DuckLake's ducklake_rewrite_data_files and "
        "ducklake_merge_adjacent_files), so readers open a few files per table, not hundreds. "
        "Tables that never held a row are first given catalog statistics "
        "(warehouse.maintenance.give_statistics), which DuckLake 1.5 otherwise reads again for "
        "every column of every query plan."
    ),
)
def compacted_lake_files(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        maintained = maintain_after_run(con)
        # Once an hour, not every micro-batch: forget the snapshots no reader can be on.
        retention = SnapshotRetention.of(warehouse.settings)
        expiry = (
            None if is_micro_batch(context) else expire_snapshots(con, retention, orphans=False)
        )
        largest = sorted(live_data_files(con).items(), key=lambda item: -item[1])[:5]
    statistics, result = maintained.statistics, maintained.compaction
    if statistics.tables:
        context.log.info(f"gave statistics to empty tables: {', '.join(statistics.tables)}")
    context.log.info(f"lake files: {result.files_before} -> {result.files_after}")
    if expiry is not None:
        context.log.info(expiry_line(expiry))
    return dg.MaterializeResult(
        metadata={
            **(expiry_metadata(expiry) if expiry is not None else {}),
            "files_before": result.files_before,
            "files_after": result.files_after,
            "most_files": dg.MetadataValue.md(
                "\n".join(f"- `{table}`: {files}" for table, files in largest) or "none"
            ),
            "statistics_given_to": ", ".join(statistics.tables) or "none",
            "duration_s": round(
                statistics.seconds + result.seconds + (expiry.seconds if expiry else 0.0), 3
            ),
        }
    )


@dg.asset(
    deps=[compacted_lake_files],
    **PIPELINE_ASSET,
    group_name="serving",
    kinds={"ducklake"},
    description=(
        "The lake snapshot readers see (the read API, `loom sql`, analysts): recorded in "
        "warehouse.ops.published_snapshots once the run's marts are all built "
        "(warehouse.published.publish). Nothing is copied."
    ),
)
def published_snapshot(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    started = time.perf_counter()
    with warehouse.connect() as con:
        data_as_of = newest_built(con)
        snapshot_id = publish(con, data_as_of)
    context.log.info(f"published lake snapshot {snapshot_id} (data as of {data_as_of})")
    metadata: dict[str, object] = {
        "snapshot_id": snapshot_id,
        "duration_s": round(time.perf_counter() - started, 3),
    }
    if data_as_of is not None:
        # The newest received time it holds: what the freshness check compares with landing.
        metadata["data_as_of"] = dg.MetadataValue.timestamp(data_as_of.replace(tzinfo=UTC))
    return dg.MaterializeResult(metadata=metadata)
