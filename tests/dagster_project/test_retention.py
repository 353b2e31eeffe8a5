"""The retention job on 40 days of (tiny) generated traffic: exactly the sessions and landing files
past their limits go, aggregates and old release-health answers stay, and a retired hour keeps its
raw rows when it is loaded again."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from bench.generate import generate
from dagster_project.assets.raw import raw_asset_key, raw_assets
from dagster_project.definitions import defs
from dagster_project.partitions import hour_key
from dagster_project.resources import WarehouseResource
from dagster_project.runner import QUIET_RUN_CONFIG
from tests.dagster_project.utils.dataset import event
from tests.dagster_project.utils.landing import land
from tests.dagster_project.utils.pipeline import PipelineWarehouse, loom_data_dir
from warehouse.dbt import HOURLY_BUILD, run_dbt, window_vars
from warehouse.duck import connect_pipeline
from warehouse.landing_retention import retire_loaded_landing_files
from warehouse.layout import PART_GLOB, RETIRED_MARKER, STREAMS, Layout, hour_of_dir
from warehouse.raw_load import load_hour, load_landed

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 1)
DAYS = 40
AS_OF = START + timedelta(days=DAYS)  # 2026-04-10 00:00, the end of the data
SESSION_CUTOFF = AS_OF - timedelta(days=30)  # prune_sessions: UTC day of as_of minus 30 days
LANDING_CUTOFF = AS_OF - timedelta(days=7)  # hours that ended by then are old enough
OLD_WINDOW = (START, START + timedelta(days=10))  # entirely before the session cutoff


def landing_files(warehouse: PipelineWarehouse) -> set[tuple[str, datetime, str]]:
    return {
        (stream, hour_of_dir(path.parent), path.name)
        for stream in STREAMS
        for path in warehouse.layout.stream_dir(stream).glob(f"org_id=*/date=*/hour=*/{PART_GLOB}")
    }


def test_retention_deletes_exactly_what_is_past_the_limits(tmp_path: Path) -> None:
    warehouse = PipelineWarehouse.create(tmp_path / "data")
    generate(
        warehouse.layout, events=120, sessions=120, days=DAYS, start=START, seed=5, progress=False
    )
    # Built as the pipeline would over one wide window, but without Dagster: a backfill run over
    # 960 hours records a materialization per hour and asset, which costs minutes, not what this
    # test is about. The retention job itself runs through Dagster.
    load_landed(warehouse.layout)
    run_dbt([*HOURLY_BUILD], layout=warehouse.layout, vars=window_vars(START, AS_OF))
    with loom_data_dir(warehouse.layout.data_dir):
        sessions_before = warehouse.rows("select * from analytics.fct_sessions")
        hourly_before = warehouse.marts()["agg_release_health_hourly"]
        old_answer = "select * from analytics.release_health_between(?::timestamp, ?::timestamp)"
        old_health_before = sorted(warehouse.query(old_answer, list(OLD_WINDOW)))
        files_before = landing_files(warehouse)
        # A write a dead ingest host left in flight two hours ago, and one a live host has open.
        stale, in_flight = _dot_files(warehouse.layout, ages_s=(7200, 5))

        result = defs.resolve_job_def("retention").execute_in_process(
            instance=warehouse.instance,
            run_config={
                **QUIET_RUN_CONFIG,
                "ops": {
                    op: {"config": {"as_of": AS_OF.isoformat()}}
                    for op in ("prune_sessions", "retire_landing_files")
                },
            },
        )

    assert result.success
    expected_pruned = [s for s in sessions_before if s["started_at"] < SESSION_CUTOFF]
    assert len(expected_pruned) > 0 and len(expected_pruned) < len(sessions_before)
    sessions_after = warehouse.rows("select * from analytics.fct_sessions")
    assert sorted(map(repr, sessions_after)) == sorted(
        repr(s) for s in sessions_before if s["started_at"] >= SESSION_CUTOFF
    )
    assert _output_metadata(result, "prune_sessions")["sessions_deleted"] == len(expected_pruned)

    expected_kept = {f for f in files_before if f[1] + timedelta(hours=1) > LANDING_CUTOFF}
    assert expected_kept and expected_kept != files_before
    assert landing_files(warehouse) == expected_kept
    assert _output_metadata(result, "retire_landing_files")["files_deleted"] == len(
        files_before - expected_kept
    )

    assert _output_metadata(result, "retire_landing_files")["stale_temp_files_deleted"] == 1
    assert not stale.exists() and in_flight.exists()

    assert warehouse.marts()["agg_release_health_hourly"] == hourly_before
    assert sorted(warehouse.query(old_answer, list(OLD_WINDOW))) == old_health_before
    assert old_health_before, "the old window has release health to compare"

    # Reloading a retired hour keeps its raw rows instead of replacing them with nothing.
    retired_hour = min(
        hour for stream, hour, _ in files_before - expected_kept if stream == "sessions"
    )
    assert any(
        warehouse.layout.hour_dir("sessions", org, retired_hour).joinpath(RETIRED_MARKER).exists()
        for org in _orgs(warehouse)
    )
    raw_rows = "select count(*) from raw.sessions where _received_hour = ?"
    (rows_before,) = warehouse.query(raw_rows, [retired_hour])[0]
    reload = dg.materialize(
        [asset for asset in raw_assets if asset.key == raw_asset_key("sessions")],
        partition_key=hour_key(retired_hour),
        instance=warehouse.instance,
        resources={"warehouse": WarehouseResource(data_dir=str(warehouse.layout.data_dir))},
    )
    assert reload.success
    assert warehouse.query(raw_rows, [retired_hour])[0] == (rows_before,) and rows_before > 0
    (event,) = reload.get_asset_materialization_events()
    assert event.step_materialization_data.materialization.metadata["retired_hours_kept"].value == 1


def _dot_files(layout: Layout, ages_s: tuple[int, ...]) -> list[Path]:
    folder = layout.hour_dir("events", "org_a", AS_OF)
    folder.mkdir(parents=True, exist_ok=True)
    now = layout.landing_clock()
    paths = []
    for n, age in enumerate(ages_s):
        path = folder / f".part-20260410T000000000000-api-{n}-4242-abcd.ndjson.tmp"
        path.write_text('{"uuid": "x"}\n')
        os.utime(path, (now - age, now - age))
        paths.append(path)
    return paths


def _output_metadata(result: dg.ExecuteInProcessResult, op: str) -> dict:
    (event,) = [e for e in result.all_events if e.is_successful_output and e.step_key == op]
    return {key: value.value for key, value in event.step_output_data.metadata.items()}


def _orgs(warehouse: PipelineWarehouse) -> list[str]:
    folder = warehouse.layout.stream_dir("sessions")
    return [path.name.removeprefix("org_id=") for path in folder.glob("org_id=*")]


def test_a_file_with_quarantined_lines_is_kept_to_be_fixed(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    hour = datetime(2026, 3, 1, 9)
    at = hour + timedelta(minutes=1)
    (good,) = land(layout, "events", [event("g1", "org_a", "u", "signed_up", at, at)])
    (broken,) = land(layout, "events", [event("g2", "org_b", "u", "signed_up", at, at)])
    broken.write_bytes(broken.read_bytes() + b'{"uuid": "trunc\n')
    with connect_pipeline(layout) as con:
        assert load_hour(con, layout, "events", hour).records_quarantined == 1
        report = retire_loaded_landing_files(con, layout, cutoff=hour + timedelta(days=8))

    # The hour is retired whole or not at all (its raw rows become the only copy): kept.
    assert good.exists() and broken.exists()
    assert report.hours_kept_unloaded == [("events", hour, 1)]
