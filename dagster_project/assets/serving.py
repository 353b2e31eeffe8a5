"""The last step of every run: publish the marts as the read API's new snapshot."""
# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import dagster as dg
from dagster import AssetExecutionContext

from dagster_project.partitions import hourly_partitions
from dagster_project.resources import PIPELINE_GROUP, WAREHOUSE_POOL, WarehouseResource
from warehouse.serving import EVENTS_MART, SERVED_MARTS, publish_snapshot


@dg.asset(
    deps=[dg.AssetKey(name) for name in (*SERVED_MARTS, EVENTS_MART)],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    group_name=PIPELINE_GROUP,
    kinds={"duckdb"},
    description=(
        "Read-only copy of the marts the read API queries (warehouse.serving.publish): readers "
        "switch to it atomically and never touch the writer's file."
    ),
)
def serving_snapshot(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    published = publish_snapshot(warehouse.layout)
    context.log.info(f"published {published.path.name}")
    return dg.MaterializeResult(
        metadata={
            "snapshot": dg.MetadataValue.path(str(published.path)),
            "version": published.version,
            "event_days_rewritten": published.event_days_rewritten,
            "event_days_total": published.event_days_total,
            "duration_s": round(published.seconds, 3),
        }
    )
