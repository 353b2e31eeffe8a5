"""End to end through Dagster: real landing files, the real hourly job (raw loads, dbt build with
its tests as checks, serving snapshot), real DuckDB. Hours run through dagster_project.runner, the
code behind `loom run`; the sensor's run request is executed the same way the daemon would."""

from __future__ import annotations

import json
from dataclasses import dataclass

import dagster as dg
import pytest

from dagster_project.assets.dbt import dbt_models
from dagster_project.assets.raw import raw_asset_key, raw_assets
from dagster_project.definitions import defs
from dagster_project.instance import warehouse_instance
from dagster_project.partitions import hour_key, hour_of_key
from dagster_project.project import dbt_project
from dagster_project.resources import WarehouseResource
from dagster_project.runner import QUIET_RUN_CONFIG
from dagster_project.sensors import late_landing_files_sensor
from tests.dagster_project.utils.dataset import (
    H1,
    H2,
    land_hour_1,
    land_hour_2,
    land_late_file_for_hour_1,
)
from tests.dagster_project.utils.in_order import InOrder
from tests.dagster_project.utils.pipeline import PipelineWarehouse, loom_data_dir
from warehouse.dbt import definitions_current, person_uuid, project_version
from warehouse.duck import connect_reader
from warehouse.published import latest_published

pytestmark = pytest.mark.slow

ANON_1 = person_uuid("org_a", "anon-1")  # identifies as user-1 in H1
ANON_2 = person_uuid("org_a", "anon-2")  # identifies as user-2 in H2
BUYER = person_uuid("org_b", "buyer-9")


def pick(rows: list[dict], *columns: str) -> set[tuple]:
    return {
        tuple(tuple(sorted(row[c])) if isinstance(row[c], list) else row[c] for c in columns)
        for row in rows
    }


def test_one_hour_gives_the_exact_marts(in_order: InOrder) -> None:
    marts = in_order.after_h1
    assert pick(marts["fct_events"], "uuid", "org_id", "event", "distinct_id", "person_id") == {
        # anon-1's pageviews belong to user-1's person after the identify; e2 was retried: once.
        # The identify is an event too.
        ("i1", "org_a", "$identify", "user-1", ANON_1),
        ("e1", "org_a", "$pageview", "anon-1", ANON_1),
        ("e2", "org_a", "$pageview", "anon-1", ANON_1),
        ("e3", "org_a", "purchase", "user-1", ANON_1),
        ("e4", "org_a", "$pageview", "anon-2", ANON_2),
        ("b1", "org_b", "signed_up", "buyer-9", BUYER),
        ("b2", "org_b", "purchase", "buyer-9", BUYER),
    }
    persons = pick(
        marts["dim_persons"], "person_id", "org_id", "distinct_ids", "is_identified", "properties"
    )
    assert persons == {
        (ANON_1, "org_a", ("anon-1", "user-1"), True, '{"plan":"pro"}'),
        (ANON_2, "org_a", ("anon-2",), False, "{}"),
        (BUYER, "org_b", ("buyer-9",), False, "{}"),
    }
    assert pick(marts["fct_sessions"], "session_id", "person_id", "status", "sample_rate") == {
        ("s1", ANON_1, "exited", 1.0),
        ("s2", ANON_2, "crashed", 1.0),
        ("s3", ANON_1, "exited", 0.5),
    }
    # One hour of app@1.0: s3 stands for 2 sessions (rate 0.5): 4 adjusted, 1 crashed; 2 users.
    assert pick(
        marts["agg_release_health_hourly"],
        "release",
        "hour",
        "stored_sessions",
        "adjusted_sessions",
        "crashed_sessions",
        "adjusted_users",
        "crashed_users",
    ) == {("app@1.0", H1, 3, 4.0, 1, 2.0, 1)}
    assert pick(
        marts["release_health"],
        "release",
        "total_sessions",
        "crashed_sessions",
        "total_users",
        "crashed_users",
        "crash_free_session_rate",
        "crash_free_user_rate",
        "adoption_rate",
        "adoption_stage",
    ) == {("app@1.0", 4, 1, 2, 1, 75.0, 50.0, 100.0, "adopted")}


def test_the_run_reports_what_it_loaded_and_checked(in_order: InOrder) -> None:
    (run,) = in_order.first_runs
    # Per org and received hour a file: H1 has 4 event files (one holds the retried e2) of 7 lines.
    nothing = {"session_aggregates": 0, "ingestion_warnings": 0}  # none in the hour
    assert run.rows_loaded == {"events": 7, "identities": 1, "sessions": 6, **nothing}
    assert run.files_read == {"events": 4, "identities": 1, "sessions": 1, **nothing}
    assert run.late_records == {"events": 0, "identities": 0, "sessions": 0, **nothing}
    # The raw loads' quarantine checks and the dbt tests tagged hourly (the rest run daily).
    assert (run.checks_passed, run.checks_failed) == (len(raw_assets) + len(hourly_tests()), 0)
    # ... and plans no other: Dagster records a planned event per check (and per hour of a
    # backfill), so a check the run never evaluates would cost bookkeeping and show as skipped.
    planned = in_order.warehouse.instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    ).records
    assert len(planned) == run.checks_passed
    materialized = {key.to_user_string() for key in in_order.warehouse.instance.get_asset_keys()}
    assert {
        "raw_events",
        "fct_events",
        "agg_release_health_hourly",
        "published_snapshot",
    } <= materialized


def hourly_tests() -> list[str]:
    manifest = json.loads(dbt_project.manifest_path.read_bytes())
    return [
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and "hourly" in node["tags"]
    ]


def test_the_daily_job_runs_every_data_test_as_the_assets_checks(in_order: InOrder) -> None:
    warehouse = in_order.warehouse
    with loom_data_dir(warehouse.layout.data_dir):
        result = defs.resolve_job_def("data_tests").execute_in_process(
            instance=warehouse.instance, run_config=QUIET_RUN_CONFIG
        )
    evaluations = result.get_asset_check_evaluations()
    assert result.success
    # Every dbt test of a model, as its check: five times as many as the hourly build runs.
    assert {evaluation.asset_check_key for evaluation in evaluations} == set(dbt_models.check_keys)
    assert len(evaluations) > 5 * len(hourly_tests())
    assert all(evaluation.passed for evaluation in evaluations)


def test_loom_run_prints_a_progress_line_per_hour(in_order: InOrder) -> None:
    lines = in_order.loom_run_output.splitlines()
    assert lines[0].startswith("2026-01-18 10:00  ok  ")
    assert "events 2 rows (1 files, 1 late)" in lines[0] and "checks passed" in lines[0]
    assert lines[-1].startswith("1 hour(s) materialized")
    # ...into the data directory's DAGSTER_HOME, the run storage the UI reads.
    with warehouse_instance(in_order.warehouse.layout) as instance:
        (run,) = instance.get_runs()
        assert (run.job_name, run.tags["dagster/partition"]) == ("hourly_pipeline", hour_key(H2))
        h2_load = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=raw_asset_key("events"), asset_partitions=[hour_key(H2)]
            ),
            limit=1,
        ).records[0]
        # e5 was sent at 09:58 and received at 10:05.
        assert h2_load.asset_materialization.metadata["late_records"].value == 1


def test_hourly_runs_leave_unchanged_definitions_out_of_dbt(in_order: InOrder) -> None:
    # The first run builds the views and table macros and records the dbt project they come from;
    # the rerun leaves them out of its dbt build and materializes them as unchanged.
    instance = in_order.warehouse.instance
    for model in ("stg_events", "events", "funnel", "release_health_between"):
        records = instance.fetch_materializations(dg.AssetKey(model), limit=5, ascending=True)
        built, rerun = (record.asset_materialization.metadata for record in records.records)
        assert "definition" not in built
        assert rerun["definition"].value == f"unchanged (dbt project {project_version()[:12]})"
    recorded = in_order.warehouse.query("select project_version from ops.built_definitions")
    assert recorded == [(project_version(),)]
    with connect_reader(in_order.warehouse.layout) as con:
        assert definitions_current(con, project_version())
        assert not definitions_current(con, "a changed project")


def test_rerunning_an_hour_changes_nothing(in_order: InOrder) -> None:
    assert in_order.after_h1_again == in_order.after_h1


def test_the_second_hour_merges_persons_and_adds_a_release(in_order: InOrder) -> None:
    marts = in_order.after_h2
    late_and_new = [row for row in marts["fct_events"] if row["uuid"] in ("e4", "e5", "e6")]
    # anon-2 identified as user-2 in H2: its person (founded by anon-2) keeps its id.
    assert pick(late_and_new, "uuid", "distinct_id", "person_id") == {
        ("e4", "anon-2", ANON_2),
        ("e5", "anon-2", ANON_2),
        ("e6", "user-2", ANON_2),
    }
    assert pick(
        marts["release_health"],
        "release",
        "total_sessions",
        "crashed_sessions",
        "errored_sessions",
        "crash_free_session_rate",
        "adoption_rate",
        "adoption_stage",
    ) == {
        ("app@1.0", 4, 1, 0.0, 75.0, 80.0, "adopted"),
        ("app@1.1", 1, 0, 1.0, 100.0, 20.0, "growing"),
    }


def test_each_run_publishes_the_snapshot_readers_attach(in_order: InOrder) -> None:
    warehouse = in_order.warehouse
    with warehouse_instance(warehouse.layout) as instance:
        (record,) = instance.fetch_materializations(
            dg.AssetKey("published_snapshot"), limit=1
        ).records
    snapshot_id = record.asset_materialization.metadata["snapshot_id"].value
    with connect_reader(warehouse.layout) as latest:
        assert latest_published(latest) == snapshot_id
    with connect_reader(warehouse.layout, snapshot=snapshot_id) as published:
        rows = published.execute(
            "select release, total_sessions from analytics.release_health order by release"
        ).fetchall()
    assert rows == [("app@1.0", 4), ("app@1.1", 1)]


@dataclass
class OutOfOrder:
    warehouse: PipelineWarehouse
    marts: dict


@pytest.fixture(scope="module")
def out_of_order(tmp_path_factory: pytest.TempPathFactory) -> OutOfOrder:
    warehouse = PipelineWarehouse.create(tmp_path_factory.mktemp("out_of_order") / "data")
    land_hour_1(warehouse.layout)
    land_hour_2(warehouse.layout)
    warehouse.run(H2, H1)
    return OutOfOrder(warehouse, warehouse.marts())


def test_hours_out_of_order_give_the_same_marts(
    in_order: InOrder, out_of_order: OutOfOrder
) -> None:
    assert out_of_order.marts == in_order.after_h2


def test_a_late_file_gets_its_hour_rebuilt_by_the_sensor(out_of_order: OutOfOrder) -> None:
    warehouse = out_of_order.warehouse
    resources = {"warehouse": WarehouseResource(data_dir=str(warehouse.layout.data_dir))}
    with dg.build_sensor_context(instance=warehouse.instance, resources=resources) as context:
        quiet = late_landing_files_sensor(context)
    assert quiet.run_requests == [], "nothing is late yet"

    land_late_file_for_hour_1(warehouse.layout)
    with dg.build_sensor_context(
        instance=warehouse.instance, resources=resources, cursor=quiet.cursor
    ) as context:
        result = late_landing_files_sensor(context)

    assert [request.partition_key for request in result.run_requests] == [hour_key(H1)]
    warehouse.run(*(hour_of_key(request.partition_key) for request in result.run_requests))
    assert warehouse.query(
        "select person_id, event from analytics.fct_events where uuid = 'e7'"
    ) == [(ANON_1, "purchase")]
    with dg.build_sensor_context(
        instance=warehouse.instance, resources=resources, cursor=result.cursor
    ) as context:
        assert late_landing_files_sensor(context).run_requests == [], "the rebuilt hour is current"
