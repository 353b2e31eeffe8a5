"""A ``loom run`` killed with ``kill -9`` in the middle of its dbt build: dbt runs inside it, so no
orphan keeps writing the lake; readers stay on the snapshot the previous run published; and the
next ``loom run`` notices the dead run, fails it, frees its warehouse slot and runs, instead of
waiting for it forever; its marts are those of a run never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
from click.testing import CliRunner

from dagster_project.cli import run
from dagster_project.instance import warehouse_instance
from dagster_project.runner import materialize_hours
from tests.dagster_project.utils.dataset import H1, H2, land_hour_1, land_hour_2
from tests.dagster_project.utils.in_order import InOrder
from tests.dagster_project.utils.pipeline import PipelineWarehouse, loom_data_dir
from tests.utils.processes import children, command_line
from warehouse.layout import Layout
from warehouse.published import published_snapshot_id

pytestmark = pytest.mark.slow

LOOM = [sys.executable, "-m", "loom"]
RUN_TIMEOUT_S = 300
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def published_marts(layout: Layout) -> dict[str, list[dict]]:
    snapshot = published_snapshot_id(layout)
    return PipelineWarehouse(layout, dg.DagsterInstance.ephemeral()).marts(snapshot=snapshot)


def test_a_killed_run_leaves_no_dbt_behind_and_the_next_run_frees_its_slot(
    tmp_path: Path, in_order: InOrder
) -> None:
    layout = Layout(tmp_path / "data")
    land_hour_1(layout)
    land_hour_2(layout)
    with loom_data_dir(layout.data_dir), warehouse_instance(layout) as instance:
        (first_hour,) = materialize_hours([H1], instance)
    assert first_hour.success
    published_before = published_marts(layout)
    logs = layout.dagster_home / "loom-run-logs"
    before = set(logs.glob("*.log"))
    env = {**os.environ, "LOOM_DATA_DIR": str(layout.data_dir)}
    killed = subprocess.Popen(
        [*LOOM, "run", "--hour", H2.isoformat()],
        env=env,
        stdout=(tmp_path / "killed-run.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: any("START" in log.read_text() for log in set(logs.glob("*.log")) - before),
            RUN_TIMEOUT_S,
            "the run to be in the middle of its dbt build",
        )
        # dbt runs inside the run's process: there is no child to orphan.
        assert not [p for p in children(killed.pid) if "dbt" in command_line(p)]
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert published_marts(layout) == published_before  # readers never saw the half run

    with loom_data_dir(layout.data_dir):
        rerun = CliRunner().invoke(run, ["--hour", H2.isoformat()])

    assert rerun.exit_code == 0, rerun.output
    assert f"(pid {killed.pid}): marked failed, its warehouse slot freed" in rerun.output
    assert "2026-01-18 10:00  ok" in rerun.output
    with warehouse_instance(layout) as instance:
        statuses = sorted(run.status.value for run in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS", "SUCCESS"]
    # The same marts as the two hours run without a kill (tests/dagster_project/conftest.py).
    assert published_marts(layout) == in_order.after_h2
