"""Micro-batches through the real jobs: the files of an hour cut at random points and built batch
by batch, one batch killed mid-build, then the closed hour's run, give exactly the marts of
hourly runs alone; the late-file sensor counts only whole-hour loads."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest
from click.testing import CliRunner

from bench.generate import generate
from dagster_project.cli import run
from dagster_project.instance import warehouse_instance
from dagster_project.sensors import loaded_as_of
from tests.dagster_project.utils.pipeline import PipelineWarehouse, loom_data_dir
from warehouse.layout import STREAMS, Layout
from warehouse.raw_load import LEDGER_TABLE

pytestmark = pytest.mark.slow

H0 = datetime(2026, 2, 3, 9)
H1 = H0 + timedelta(hours=1)
CUT_SEED = 28
LINES_PER_FILE = 40
POISON = b'{"uuid": "poison", "sample_rate": 1e-320}\n'
LOOM = str(Path(sys.executable).with_name("loom"))


def landing_files(source: Layout, hour: datetime) -> list[tuple[str, str, bytes]]:
    """The hour's records as the API would land them over the hour: small files of each stream
    and org in received order, as (stream, org, content), ordered by when each file is complete."""
    chunks = []
    for stream in STREAMS:
        by_org: dict[str, list[dict]] = defaultdict(list)
        for path in source.hour_files(stream, hour):
            for line in path.read_bytes().splitlines():
                item = orjson.loads(line)
                by_org[item["org_id"]].append(item)
        for org, items in by_org.items():
            items.sort(key=lambda item: item["received_at"])
            for start in range(0, len(items), LINES_PER_FILE):
                part = items[start : start + LINES_PER_FILE]
                content = b"".join(orjson.dumps(item) + b"\n" for item in part)
                chunks.append((part[-1]["received_at"], stream, org, content))
    chunks.sort()
    return [(stream, org, content) for _, stream, org, content in chunks]


def land_files(layout: Layout, hour: datetime, files: list[tuple[str, str, bytes]]) -> None:
    for stream, org, content in files:
        folder = layout.hour_dir(stream, org, hour)
        folder.mkdir(parents=True, exist_ok=True)
        number = len(list(folder.glob("part-*.ndjson")))
        scratch = folder / f".part-{number:05d}.tmp"
        scratch.write_bytes(content)
        scratch.rename(folder / f"part-{number:05d}.ndjson")


def copy_warehouse(source: Path, destination: Path) -> PipelineWarehouse:
    shutil.copytree(source, destination)  # the default lake moves with its data directory
    return PipelineWarehouse.create(destination)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> dict[datetime, list]:
    """Two received hours of generated traffic: identifies and aliases, a release sampled at 0.1,
    crashes, sessions ending in the next hour, retried and late events, one poison line."""
    source = Layout(tmp_path_factory.mktemp("traffic"))
    generate(
        source, events=1500, sessions=180, days=2 / 24, start=H0, seed=5, orgs=2, progress=False
    )
    files = {hour: landing_files(source, hour) for hour in (H0, H1)}
    stream, org, content = files[H1][len(files[H1]) // 2]
    files[H1][len(files[H1]) // 2] = (stream, org, content + POISON)  # quarantined, not fatal
    return files


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, traffic) -> Path:
    """H0 landed and built by its closed-hour run: what both ways of building H1 start from."""
    warehouse = PipelineWarehouse.create(tmp_path_factory.mktemp("history") / "data")
    land_files(warehouse.layout, H0, traffic[H0])
    warehouse.run(H0)
    return warehouse.layout.data_dir


@pytest.fixture(scope="module")
def hourly_only(tmp_path_factory, traffic, history) -> dict:
    warehouse = copy_warehouse(history, tmp_path_factory.mktemp("hourly-only") / "data")
    land_files(warehouse.layout, H1, traffic[H1])
    warehouse.run(H1)
    return warehouse.marts()


def test_random_cuts_into_micro_batches_then_the_closed_hour_equal_hourly_runs(
    tmp_path: Path, traffic, history, hourly_only
) -> None:
    """One of the batches is killed (`kill -9`) while dbt builds: the next one lets its run go
    and builds its rows with its own."""
    warehouse = copy_warehouse(history, tmp_path / "data")
    files = traffic[H1]
    cuts = sorted(random.Random(CUT_SEED).sample(range(1, len(files)), 3))
    batches = list(zip([0, *cuts], [*cuts, len(files)], strict=True))
    killed = 1
    for number, (start, end) in enumerate(batches):
        land_files(warehouse.layout, H1, files[start:end])
        if number == killed:
            kill_a_micro_batch_mid_build(warehouse)
            continue
        output = loom_run(warehouse, "--micro-batch", "--hour", f"{H1:%Y-%m-%dT%H}")
        if number == killed + 1:
            assert "left unfinished by a process that is gone" in output
        # Each batch builds and publishes what landed so far, the killed batch's rows included.
        assert unbuilt_entries(warehouse) == 0
        landed = [content for stream, _, content in files[:end] if stream == "events"]
        lines = sum(content.count(b"\n") for content in landed)
        poison = sum(POISON in content for content in landed)
        assert published_events(warehouse, H1) == lines - poison
    # A micro-batch is not the hour's load: the late-file sensor leaves an unclosed hour to the
    # schedule instead of rerunning it for every file that landed after a batch.
    with warehouse_instance(warehouse.layout) as instance:
        assert loaded_as_of(instance, "events", H1) is None

    loom_run(warehouse, "--hour", f"{H1:%Y-%m-%dT%H}")  # the closed hour's run: the final word

    with warehouse_instance(warehouse.layout) as instance:
        assert loaded_as_of(instance, "events", H1) is not None
    assert warehouse.marts() == hourly_only


def loom_run(warehouse: PipelineWarehouse, *args: str) -> str:
    """`loom run` in this process, on the warehouse's own Dagster instance; its output."""
    with loom_data_dir(warehouse.layout.data_dir):
        result = CliRunner().invoke(run, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def kill_a_micro_batch_mid_build(warehouse: PipelineWarehouse) -> None:
    """`loom run --micro-batch` in a process of its own, killed once its raw loads committed and
    before its dbt build did."""
    batch = subprocess.Popen(
        [LOOM, "run", "--micro-batch", "--hour", f"{H1:%Y-%m-%dT%H}"],
        env={**os.environ, "LOOM_DATA_DIR": str(warehouse.layout.data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not unbuilt_entries(warehouse):
            assert batch.poll() is None and time.monotonic() < deadline, "the batch never loaded"
            time.sleep(0.1)
    finally:
        batch.kill()
        batch.wait()
    assert unbuilt_entries(warehouse) > 0, "the batch finished before it was killed: not a test"


def published_events(warehouse: PipelineWarehouse, hour: datetime) -> int:
    """Events of the received hour in the newest published snapshot."""
    [(snapshot,)] = warehouse.query("select max(snapshot_id) from ops.published_snapshots")
    [(events,)] = warehouse.query(
        "select count(*) from raw.events where _received_hour = ?", [hour], snapshot=snapshot
    )
    return events


def unbuilt_entries(warehouse: PipelineWarehouse) -> int:
    """Loaded landing files whose rows no dbt build has covered yet."""
    try:
        [(entries,)] = warehouse.query(
            f"select count(*) from {LEDGER_TABLE} where built_at is null and rows_loaded > 0"
        )
    except duckdb.Error:  # a batch in progress has not created the ledger yet
        return 0
    return entries
