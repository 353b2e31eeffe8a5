"""The definitions load, and every asset, check, job, schedule and sensor is there and wired."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import yaml

from dagster_project import defs
from dagster_project.assets.dbt import GROUPS_IN_LAYER_ORDER, area_of, in_dependency_order
from dagster_project.assets.lake import published_snapshot
from dagster_project.assets.raw import QUARANTINE_CHECK
from dagster_project.instance import WRITER_TAG, dagster_storage_database, prepare_dagster_home
from dagster_project.micro_batches import FRESHNESS_CHECK
from dagster_project.partitions import hourly_partitions
from dagster_project.project import dbt_project
from dagster_project.resources import WAREHOUSE_POOL
from dagster_project.run_launcher import WarmRunLauncher
from warehouse.layout import Layout
from warehouse.settings import environment, get_settings

RAW = {
    "raw_events",
    "raw_identities",
    "raw_sessions",
    "raw_session_aggregates",
    "raw_ingestion_warnings",
}


def _manifest() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())


def test_the_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_every_stream_model_and_the_snapshot_is_an_hourly_asset() -> None:
    graph = defs.resolve_asset_graph()
    models = {
        node["name"]
        for node in _manifest()["nodes"].values()
        # ephemeral models are inlined into their consumers' SQL: nothing to materialize
        if node["resource_type"] == "model" and node["config"]["materialized"] != "ephemeral"
    }
    materializable = {key.to_user_string() for key in graph.materializable_asset_keys}

    assert materializable == RAW | models | {"compacted_lake_files", "published_snapshot"}
    assert {"fct_events", "dim_persons", "fct_sessions", "agg_release_health_hourly"} <= models
    for key in graph.materializable_asset_keys:
        assert graph.get(key).partitions_def == hourly_partitions, key


def test_the_asset_groups_are_the_areas_in_layer_order() -> None:
    """Raw loads, then one group per area of the dbt project (staging, and each folder under
    intermediate/ and marts/), then the lake's maintenance and the snapshot readers are served;
    no asset depends on one of a later group, so the UI's group lineage reads downward."""
    graph = defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.materializable_asset_keys:
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    models = [
        (area_of(node["fqn"]), node["name"])
        for node in _manifest()["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] != "ephemeral"
    ]

    assert list(groups) and set(groups) == set(GROUPS_IN_LAYER_ORDER)
    assert groups["raw"] == RAW
    assert groups["maintenance"] == {"compacted_lake_files"}
    assert groups["serving"] == {"published_snapshot"}
    assert all(name.startswith("stg_") for name in groups["staging"])
    assert len(models) >= 29
    for area, name in models:
        assert name in groups[area], (area, name)
    rank = {group: position for position, group in enumerate(GROUPS_IN_LAYER_ORDER)}
    backwards = [
        (parent.to_user_string(), key.to_user_string())
        for key in graph.materializable_asset_keys
        for parent in graph.get(key).parent_keys
        if parent in graph.materializable_asset_keys
        and rank[graph.get(parent).group_name] > rank[graph.get(key).group_name]
    ]
    assert backwards == []


def test_no_intermediate_model_reads_a_mart() -> None:
    nodes = _manifest()["nodes"]
    reads = [
        (node["name"], nodes[parent]["name"])
        for node in nodes.values()
        if node["resource_type"] == "model" and node["fqn"][1] == "intermediate"
        for parent in node["depends_on"]["nodes"]
        if parent in nodes and nodes[parent]["fqn"][1] == "marts"
    ]
    assert reads == []


def test_lineage_runs_from_the_raw_loads_to_the_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    for stream in ("events", "identities", "sessions", "session_aggregates"):
        assert dg.AssetKey(f"raw_{stream}") in graph.get(dg.AssetKey(f"stg_{stream}")).parent_keys
    models = {
        dg.AssetKey(node["name"])
        for node in _manifest()["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] != "ephemeral"
    }
    # Compaction follows every model, and the publish follows compaction.
    assert graph.get(dg.AssetKey("compacted_lake_files")).parent_keys == models
    assert graph.get(dg.AssetKey("published_snapshot")).parent_keys == {
        dg.AssetKey("compacted_lake_files")
    }


def test_every_dbt_test_of_a_model_is_an_asset_check() -> None:
    manifest = _manifest()
    expected = set()
    for node in manifest["nodes"].values():
        attached = node.get("attached_node")
        if node["resource_type"] == "test" and attached and attached.startswith("model."):
            model = manifest["nodes"][attached]["name"]
            expected.add(dg.AssetCheckKey(dg.AssetKey(model), node["name"]))

    checks = set(defs.resolve_asset_graph().asset_check_keys)

    assert len(expected) > 50
    assert expected <= checks


def test_every_step_that_writes_the_warehouse_is_in_the_one_slot_pool(tmp_path: Path) -> None:
    jobs = [defs.resolve_job_def(name) for name in ("hourly_pipeline", "micro_batch", "retention")]
    for job in jobs:
        for node in job.graph.node_defs:
            assert node.pool == WAREHOUSE_POOL, node.name
        assert job.tags[WRITER_TAG] == WAREHOUSE_POOL, job.name

    config = yaml.safe_load((prepare_dagster_home(Layout(tmp_path)) / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": WRITER_TAG, "value": WAREHOUSE_POOL, "limit": 1}
    ]
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert (pools.default_pool_limit, pools.pool_granularity.value) == (1, "op")
        # the daemon's runs go to the warm run worker, and a dead worker's run is failed
        assert isinstance(instance.run_launcher, WarmRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
        # a writer run waiting for the lease (still STARTING) is not failed as a start timeout
        lease_wait = get_settings().writer_lease_wait_seconds
        assert instance.run_monitoring_start_timeout_seconds > lease_wait
        assert config["run_monitoring"]["enabled"]


def test_dagster_storage_follows_a_postgres_catalog_unless_told_otherwise(tmp_path: Path) -> None:
    """One host keeps SQLite files; hosts sharing a PostgreSQL catalog share Dagster's storage
    (tests/ingest_api/read/test_many_hosts.py); LOOM_DAGSTER_STORAGE=sqlite keeps it local."""
    shared = Layout(tmp_path / "pipe", "postgres:host=db.invalid dbname=loom", f"{tmp_path}/files/")
    assert dagster_storage_database(Layout(tmp_path / "one")) is None
    assert dagster_storage_database(shared) == "host=db.invalid dbname=loom"
    with environment({"LOOM_DAGSTER_STORAGE": "postgres:host=dagster.internal dbname=runs"}):
        assert dagster_storage_database(shared) == "host=dagster.internal dbname=runs"
    with environment({"LOOM_DAGSTER_STORAGE": "sqlite"}):
        config = yaml.safe_load((prepare_dagster_home(shared) / "dagster.yaml").read_text())
    assert "storage" not in config and config["event_log_storage"]["class"] == (
        "BatchingSqliteEventLogStorage"
    )


def test_schedules_and_sensors_start_running() -> None:
    hourly = defs.resolve_schedule_def("hourly_pipeline_schedule")
    retention = defs.resolve_schedule_def("retention_schedule")
    late_files = defs.resolve_sensor_def("late_landing_files_sensor")
    micro_batches = defs.resolve_sensor_def("micro_batch_sensor")

    assert (hourly.job_name, retention.job_name, late_files.job_name) == (
        "hourly_pipeline",
        "retention",
        "hourly_pipeline",
    )
    assert micro_batches.job_name == "micro_batch"
    assert micro_batches.minimum_interval_seconds == get_settings().micro_batch_seconds == 60
    assert retention.cron_schedule == "30 3 * * *"
    for automation in (hourly, retention):
        assert automation.default_status == dg.DefaultScheduleStatus.RUNNING
    for sensor in (late_files, micro_batches):
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_the_micro_batch_job_builds_every_asset_and_leaves_the_dbt_tests_to_the_hour() -> None:
    micro = defs.resolve_job_def("micro_batch")
    hourly = defs.resolve_job_def("hourly_pipeline")
    assert micro.asset_layer.executable_asset_keys == hourly.asset_layer.executable_asset_keys
    checks = {key.name for key in micro.asset_layer.asset_graph.asset_check_keys}
    assert checks == {QUARANTINE_CHECK}
    # the freshness check is on the published snapshot, evaluated by the sensor
    all_checks = defs.resolve_asset_graph().asset_check_keys
    assert dg.AssetCheckKey(published_snapshot.key, FRESHNESS_CHECK) in all_checks


def test_dbt_outputs_are_yielded_in_the_manifests_dependency_order() -> None:
    # In a windowed run dbt may build int_b before stg_a when int_b's `ref` sits in a branch taken
    # only without window vars; Dagster needs stg_a first, as the manifest's graph says.
    manifest = {
        "parent_map": {
            "model.p.stg_a": ["source.p.raw.a"],
            "model.p.int_b": ["model.p.stg_a"],
            "test.p.not_null_int_b": ["model.p.int_b"],
            "source.p.raw.a": [],
        }
    }

    def output(name: str) -> dg.Output:
        return dg.Output(None, output_name=name, metadata={"unique_id": f"model.p.{name}"})

    check = dg.AssetCheckResult(asset_key=dg.AssetKey("int_b"), check_name="not_null", passed=True)
    events = [output("int_b"), check, output("stg_a")]

    ordered = in_dependency_order(events, manifest)

    assert [getattr(e, "output_name", "check") for e in ordered] == ["stg_a", "int_b", "check"]


def test_alerts_are_judged_and_posted_by_sensors_outside_every_run(tmp_path: Path) -> None:
    """No job can wait on an alert: the alerts asset is not materializable (its sensor reports
    on it), and sensors tick in threads of their own, so a hanging webhook holds back no other
    sensor's look either."""
    graph = defs.resolve_asset_graph()
    alerts = dg.AssetKey("release_health_alerts")
    assert alerts not in graph.materializable_asset_keys
    assert graph.get(alerts).parent_keys == {published_snapshot.key}
    assert graph.get(alerts).group_name == "serving"
    for name in ("hourly_pipeline", "micro_batch", "retention", "data_tests"):
        assert alerts not in defs.resolve_job_def(name).asset_layer.executable_asset_keys
    for name in (
        "release_health_alerts_sensor",
        "alert_deliveries_sensor",
        "run_failure_alert",
        "failing_checks_alert",
        "pipeline_metrics_sensor",
    ):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, name
        assert not sensor.targets, name  # starts no run
    config = yaml.safe_load((prepare_dagster_home(Layout(tmp_path)) / "dagster.yaml").read_text())
    assert config["sensors"] == {"use_threads": True, "num_workers": 4}
