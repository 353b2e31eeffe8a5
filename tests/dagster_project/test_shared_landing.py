"""One landing path shared by two ingest hosts (``LOOM_LANDING_PATH``), each writing under its own
host id: the hour's raw load (the hourly job's asset) reads both hosts' files, the late-file
sensor reruns the hour when one host's file arrives after the load, and retention retires both
hosts' files. The pipeline host's clock runs ahead of the landing storage's, which stamps the
files' times (an NFS server's clock, not the writer's): the sensor still sees the late file."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import orjson
import pytest

from dagster_project.assets.raw import raw_asset_key, raw_assets
from dagster_project.partitions import hour_key
from dagster_project.resources import WarehouseResource
from dagster_project.sensors import late_landing_files_sensor
from ingest_api.ingest.landing import Chunk, Target, write_chunks
from tests.dagster_project.utils.dataset import event
from warehouse.duck import connect_pipeline, connect_reader
from warehouse.landing_retention import retire_loaded_landing_files
from warehouse.layout import RETIRED_MARKER, Layout
from warehouse.settings import environment

pytestmark = pytest.mark.slow

HOUR = datetime(2026, 1, 18, 10)
CLOCK_AHEAD_S = 120  # the pipeline host's clock, ahead of the landing storage's


def land_as(host: Layout, uuid: str) -> Path:
    """One event landed by ``host``'s ingest writer (its file names, its durable writes)."""
    at = HOUR + timedelta(minutes=30)
    payload = orjson.dumps(event(uuid, "org_a", "u1", "signed_up", at, at)) + b"\n"
    before = set(host.hour_files("events", HOUR))
    write_chunks(host, [Chunk(Target("events", "org_a", HOUR), payload, 1)], set())
    (path,) = set(host.hour_files("events", HOUR)) - before
    assert f"-{host.host_id}-" in path.name
    return path


def test_every_hosts_files_are_loaded_rerun_when_late_and_retired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_time = time.time
    monkeypatch.setattr(time, "time", lambda: host_time() + CLOCK_AHEAD_S)
    landing = tmp_path / "shared-landing"
    api_1, api_2 = (Layout(tmp_path / name, landing_path=landing) for name in ("api-1", "api-2"))
    pipeline = Layout(tmp_path / "pipeline", landing_path=landing)
    settings = {"LOOM_DATA_DIR": str(pipeline.data_dir), "LOOM_LANDING_PATH": str(landing)}
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource()}
    (raw_events,) = [asset for asset in raw_assets if asset.key == raw_asset_key("events")]

    def load() -> list[str]:
        """The hour's raw load, as the hourly job runs it: the uuids in ``raw.events`` then."""
        loaded = dg.materialize(
            [raw_events], partition_key=hour_key(HOUR), instance=instance, resources=resources
        )
        assert loaded.success
        with connect_reader(pipeline) as con:
            query = "select uuid from raw.events order by uuid"
            return [uuid for (uuid,) in con.execute(query).fetchall()]

    def sensor(cursor: str | None = None) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=instance, resources=resources, cursor=cursor
        ) as context:
            return late_landing_files_sensor(context)

    files = [land_as(api_1, "a1"), land_as(api_2, "b1")]
    with environment(settings):
        assert load() == ["a1", "b1"]
        quiet = sensor()
        assert quiet.run_requests == []

        files.append(land_as(api_2, "b2"))  # late: after its hour was loaded
        late = sensor(quiet.cursor)
        assert [request.partition_key for request in late.run_requests] == [hour_key(HOUR)]
        assert load() == ["a1", "b1", "b2"]
        assert sensor(late.cursor).run_requests == []

        with connect_pipeline(pipeline) as con:
            report = retire_loaded_landing_files(con, pipeline, cutoff=HOUR + timedelta(days=8))
    assert report.files_deleted == 3 and report.hours_kept_unloaded == []
    assert [path.exists() for path in files] == [False, False, False]
    assert (pipeline.hour_dir("events", "org_a", HOUR) / RETIRED_MARKER).exists()
