"""The dbt project as hourly-partitioned assets; its data tests are the assets' checks.

One ``dbt build`` per run, over the run's received-time window (one hour, or a backfill's whole
range thanks to ``BackfillPolicy.single_run``), passed as the vars ``window_start``/``window_end``
that every incremental model of the project filters on. dbt sources ``raw.<stream>`` map to the
raw-load assets, so the graph runs from landing to marts.
"""
# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import json
import shutil
from collections.abc import Iterator, Mapping
from graphlib import TopologicalSorter
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from dagster_project.assets.raw import raw_asset_key
from dagster_project.partitions import dbt_window_vars, hourly_partitions
from dagster_project.project import dbt_environment, dbt_project, prepare_manifest
from dagster_project.resources import PIPELINE_GROUP, WAREHOUSE_POOL, WarehouseResource
from warehouse.dbt import prepare_warehouse
from warehouse.layout import STREAMS

# Unit tests check the models' logic, not the hour's data: `make dbt-build` runs them, the hourly
# build does not.
HOURLY_BUILD = ["build", "--exclude-resource-type", "unit_test"]


class LoomDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # dbt names are unique within the project, so the model name alone is the key; the raw
        # sources are the raw-load assets.
        if dbt_resource_props["resource_type"] == "source":
            if dbt_resource_props["source_name"] == "raw" and dbt_resource_props["name"] in STREAMS:
                return raw_asset_key(dbt_resource_props["name"])
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return PIPELINE_GROUP


def row_counts(warehouse: WarehouseResource, relations: Mapping[str, str]) -> dict[str, int]:
    """Rows in each built table, counted once dbt has exited and released the file."""
    if not relations:
        return {}
    with warehouse.connect() as con:
        return {
            unique_id: con.execute(f"select count(*) from {relation}").fetchone()[0]
            for unique_id, relation in relations.items()
        }


prepare_manifest(dbt_project)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    name="dbt_models",
    partitions_def=hourly_partitions,
    dagster_dbt_translator=LoomDbtTranslator(),
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    window_vars = dbt_window_vars(context.partition_time_window)
    layout = warehouse.layout
    prepare_warehouse(layout)  # the raw tables dbt's sources name, should this run skip the loads
    with dbt_environment(layout):
        invocation = dbt.cli([*HOURLY_BUILD, "--vars", json.dumps(window_vars)], context=context)
        # Held until dbt exits so each materialization can carry its table's row count.
        events = list(invocation.stream())
    # Each invocation writes ~10 MB of artifacts (manifest, compiled SQL) to its own directory;
    # a failed build raised above and keeps them for inspection, a successful one does not.
    shutil.rmtree(invocation.target_path, ignore_errors=True)
    counts = row_counts(warehouse, built_tables(invocation.manifest, events))
    annotated = [
        with_run_metadata(event, window_vars, counts) if isinstance(event, dg.Output) else event
        for event in events
    ]
    yield from in_dependency_order(annotated, invocation.manifest)


def built_tables(manifest: Mapping[str, Any], events: list[Any]) -> dict[str, str]:
    """unique_id -> relation of the models this build materialized as tables."""
    built = {_unique_id(event) for event in events if isinstance(event, dg.Output)}
    return {
        unique_id: node["relation_name"]
        for unique_id, node in manifest["nodes"].items()
        if unique_id in built and node["config"].get("materialized") in ("table", "incremental")
    }


def with_run_metadata(
    output: dg.Output, window_vars: Mapping[str, str], counts: Mapping[str, int]
) -> dg.Output:
    extra: dict[str, Any] = dict(window_vars)
    if _unique_id(output) in counts:
        extra["dagster/row_count"] = counts[_unique_id(output)]
    return output.with_metadata({**output.metadata, **extra})


def in_dependency_order(events: list[Any], manifest: Mapping[str, Any]) -> list[Any]:
    """Model outputs (each followed by its checks) in the topological order of the manifest the
    assets were defined with. dbt's own order can differ: a model whose `ref`s sit in a branch
    taken only without window vars has fewer parents in a windowed run, and Dagster refuses an
    asset yielded before one of its upstream assets of the same step."""
    position = {
        unique_id: index
        for index, unique_id in enumerate(TopologicalSorter(manifest["parent_map"]).static_order())
    }
    asset_position = {
        event.output_name: position[_unique_id(event)]
        for event in events
        if isinstance(event, dg.Output)
    }

    def key(event: Any) -> tuple[float, int]:
        if isinstance(event, dg.Output):
            return asset_position[event.output_name], 0
        if isinstance(event, dg.AssetCheckResult) and event.asset_key is not None:
            return asset_position.get(event.asset_key.to_python_identifier(), -1), 1
        return float("inf"), 0  # observations of source tests: after everything

    return sorted(events, key=key)


def _unique_id(output: dg.Output) -> str:
    return output.metadata["unique_id"].value
