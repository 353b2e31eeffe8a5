"""The dbt project as hourly-partitioned assets; its data tests are the assets' checks.

One ``dbt build`` per run, over the run's received-time window (one hour, or a backfill's whole
range thanks to ``BackfillPolicy.single_run``), passed as the vars ``window_start``/``window_end``
that every incremental model of the project filters on. dbt sources ``raw.<stream>`` map to the
raw-load assets, so the graph runs from landing to marts (docs/pipeline.md). Views and table
macros change with the project, not the hour: once the lake records that they were built from
the project as it is, hourly builds leave them out of dbt and materialize them as unchanged.

dbt runs in this process (``warehouse.dbt.run_dbt``), from the manifest parsed once per process,
not as a ``dbt`` child process that would import dbt and parse the project again every hour;
dagster-dbt still turns each node's result into the asset's materialization or check. A killed
run therefore takes its dbt along: there is no child to orphan.
"""
# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets
from dbt.cli.main import dbtRunnerResult
from dbt_common.events.base_types import EventMsg
from dbt_common.events.functions import msg_to_dict

from dagster_project.assets.raw import raw_asset_key
from dagster_project.framework_workarounds import (
    DBT_INDIRECT_SELECTION_ENV,
    DbtCoreCliEventMessage,
    get_asset_check_key_for_test,
    get_updated_cli_invocation_params_for_context,
)
from dagster_project.partitions import (
    dbt_window_vars,
    hourly_partitions,
    is_micro_batch,
    window_bounds,
)
from dagster_project.project import dbt_project, prepare_manifest
from dagster_project.resources import WAREHOUSE_POOL, WarehouseResource
from warehouse.dbt import (
    DEFINITION_MATERIALIZATIONS,
    DEFINITIONS,
    HOURLY_BUILD,
    HOURLY_SELECTION,
    MODELS_SELECTION,
    DbtRunError,
    definitions_current,
    failure_message,
    project_version,
    record_definitions,
    run_dbt,
    window_vars,
)
from warehouse.layout import STREAMS, Layout
from warehouse.raw_load import ensure_raw_tables, mark_built, unbuilt_window

# dbt's events that carry a node's result, which dagster-dbt turns into materializations and checks.
RESULT_EVENTS = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"})


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
        # The model's area, as the project is laid out: `staging`, or the folder under
        # intermediate/ or marts/ (identity, sessions, product_analytics, release_health).
        return area_of(dbt_resource_props["fqn"])

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        # Not blocking: most tests run daily, not with every materialization. A failing test
        # still stops the run (dbt build skips what depends on it and the step fails).
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        return None if spec is None else spec._replace(blocking=False)


# The asset groups in layer order: no asset depends on one of a later group (a test holds it).
GROUPS_IN_LAYER_ORDER = (
    "raw",
    "staging",
    "identity",
    "sessions",
    "product_analytics",
    "release_health",
    "ingestion",
    "maintenance",
    "serving",
)


def area_of(fqn: Sequence[str]) -> str:
    """``['loom_warehouse', 'marts', 'release_health', 'fct_sessions']`` -> ``release_health``."""
    return fqn[1] if len(fqn) <= 3 else fqn[2]


def row_counts(warehouse: WarehouseResource, relations: Mapping[str, str]) -> dict[str, int]:
    """Rows in each built table, counted once dbt is done, in one query (each query of the lake
    reads its catalog once more)."""
    if not relations:
        return {}
    ids = list(relations)
    counts = " union all ".join(
        f"select {position} as relation, count(*) as row_count from {relations[unique_id]}"
        for position, unique_id in enumerate(ids)
    )
    with warehouse.connect() as con:
        return {ids[position]: rows for position, rows in con.execute(counts).fetchall()}


prepare_manifest()
TRANSLATOR = LoomDbtTranslator()


def hourly_check_keys(manifest: Mapping[str, Any]) -> frozenset[dg.AssetCheckKey]:
    """The checks of the dbt tests tagged ``hourly``: the ones an hourly run evaluates."""
    return frozenset(
        key
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and "hourly" in node["tags"]
        if (key := get_asset_check_key_for_test(manifest, TRANSLATOR, unique_id, dbt_project))
    )


HOURLY_CHECKS = hourly_check_keys(json.loads(dbt_project.manifest_path.read_bytes()))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    name="dbt_models",
    partitions_def=hourly_partitions,
    dagster_dbt_translator=TRANSLATOR,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
    run_vars = dbt_window_vars(context.partition_time_window)
    layout = warehouse.layout
    version = project_version()
    with warehouse.connect() as con:
        ensure_raw_tables(con)  # should this run have skipped the raw loads
        definitions_built = definitions_current(con, version)
        # A micro-batch builds the received-time window of every loaded row not built yet: its
        # own raw loads', and any a failed or killed batch left.
        batch_window = unbuilt_window(con) if is_micro_batch(context) else None
    if is_micro_batch(context):
        if batch_window is None:
            context.log.info("no loaded row is waiting to be built")
            return
        run_vars = window_vars(*batch_window)
    manifest = json.loads(dbt_project.manifest_path.read_bytes())
    every_model = context.selected_asset_keys == context.assets_def.keys
    unchanged_definitions: list[str] = []
    if every_model and context.selected_asset_check_keys in (HOURLY_CHECKS, frozenset()):
        # the hourly job's selection, or a micro-batch's (no checks), in dbt's own words
        checks = context.selected_asset_check_keys
        selection_args = list(HOURLY_SELECTION if checks else MODELS_SELECTION)
        indirect_selection = None
        if definitions_built:
            selection_args += ["--exclude", DEFINITIONS]
            unchanged_definitions = definition_models(manifest)
    elif context.is_subset:  # the UI's selection of models and checks
        selection = get_updated_cli_invocation_params_for_context(
            context=context, manifest=manifest, dagster_dbt_translator=TRANSLATOR
        )
        selection_args, indirect_selection = selection.selection_args, selection.indirect_selection
    else:  # every model and every test, over the window
        selection_args, indirect_selection = [], None
    target = Path(tempfile.mkdtemp(prefix=f"dbt-{context.run.run_id[:8]}-"))
    result, events = dagster_events_of_dbt(
        context,
        [*HOURLY_BUILD, *selection_args],
        layout,
        manifest,
        target,
        vars=run_vars,
        env={DBT_INDIRECT_SELECTION_ENV: indirect_selection} if indirect_selection else None,
    )
    # Held until dbt is done so each materialization can carry its table's row count.
    counts = row_counts(warehouse, built_tables(manifest, events))
    annotated = [
        with_run_metadata(event, run_vars, counts) if isinstance(event, dg.Output) else event
        for event in events
    ] + [unchanged_definition(unique_id, manifest, version) for unique_id in unchanged_definitions]
    yield from in_dependency_order(annotated, manifest)
    raise_unless_successful(result, HOURLY_BUILD, target)
    if every_model:
        with warehouse.connect() as con:
            mark_built(con, batch_window or window_bounds(context.partition_time_window))
            if not definitions_built:
                record_definitions(con, version)


def definition_models(manifest: Mapping[str, Any]) -> list[str]:
    """unique_ids of the project's views and table macros (warehouse.dbt.DEFINITIONS)."""
    return [
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
        and node["config"]["materialized"] in DEFINITION_MATERIALIZATIONS
    ]


def unchanged_definition(unique_id: str, manifest: Mapping[str, Any], version: str) -> dg.Output:
    """The materialization of a view or table macro an hourly build left out: the lake holds it
    as this project version defines it, for this hour as for the previous ones."""
    node = manifest["nodes"][unique_id]
    return dg.Output(
        None,
        output_name=TRANSLATOR.get_asset_key(node).to_python_identifier(),
        metadata={
            "unique_id": unique_id,
            "definition": dg.MetadataValue.text(f"unchanged (dbt project {version[:12]})"),
        },
    )


def dagster_events_of_dbt(
    context: AssetExecutionContext | dg.OpExecutionContext,
    args: list[str],
    layout: Layout,
    manifest: Mapping[str, Any],
    target: Path,
    vars: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[dbtRunnerResult, list[Any]]:
    """Run dbt in this process; its result and each node's result as Dagster events: in an
    asset, outputs and asset check results; in an op, materializations and check evaluations."""
    finished: list[dict[str, Any]] = []

    def collect(message: EventMsg) -> None:
        if message.info.name in RESULT_EVENTS:
            finished.append(msg_to_dict(message))

    result = run_dbt(
        args,
        layout=layout,
        vars=vars,
        target_path=target,
        quiet=False,  # dbt's log lines go to the step's output, as the UI shows it
        check=False,
        callbacks=[collect],
        env=env,
    )
    events = [
        event
        for raw_event in finished
        for event in DbtCoreCliEventMessage(
            raw_event=raw_event, event_history_metadata={}
        ).to_default_asset_events(
            manifest=manifest,
            dagster_dbt_translator=TRANSLATOR,
            context=context,
            target_path=target,
            project=dbt_project,
        )
    ]
    return result, events


def raise_unless_successful(result: dbtRunnerResult, args: list[str], target: Path) -> None:
    """Fail the step when dbt did; else drop its artifacts (~10 MB of compiled SQL)."""
    if not result.success:
        raise DbtRunError(f"{failure_message(args, result)}\n(compiled SQL: {target})")
    shutil.rmtree(target, ignore_errors=True)


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
