"""A ``loom run`` killed with ``kill -9`` in the middle of its dbt build: its dbt child dies with
it (no orphan keeps writing the lake), readers stay on the snapshot the previous run published,
and the next ``loom run`` notices the dead run, fails it, frees its warehouse slot and runs,
instead of waiting for it forever; its marts are those of a run never interrupted."""

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

from dagster_project.instance import warehouse_instance
from tests.dagster_project.conftest import InOrder
from tests.dagster_project.dataset import H1, H2, land_hour_1, land_hour_2
from tests.dagster_project.pipeline import TestWarehouse
from tests.processes import alive, children, command_line
from warehouse.layout import Layout
from warehouse.published import published_snapshot_id

pytestmark = pytest.mark.slow

LOOM = [sys.executable, "-c", "from warehouse.cli import main; main(prog_name='loom')"]
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
    return TestWarehouse(layout, dg.DagsterInstance.ephemeral()).marts(snapshot=snapshot)


def test_a_killed_run_takes_its_dbt_along_and_the_next_run_frees_its_slot(
    tmp_path: Path, in_order: InOrder
) -> None:
    layout = Layout(tmp_path / "data")
    land_hour_1(layout)
    land_hour_2(layout)
    env = {**os.environ, "LOOM_DATA_DIR": str(layout.data_dir)}
    first_hour = subprocess.run(
        [*LOOM, "run", "--hour", H1.isoformat()],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert first_hour.returncode == 0, first_hour.stdout + first_hour.stderr
    published_before = published_marts(layout)
    command = [*LOOM, "run", "--hour", H2.isoformat()]
    log = (tmp_path / "killed-run.log").open("w")
    first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        dbt = wait_for(
            lambda: [p for p in children(first.pid) if "dbt" in command_line(p)],
            RUN_TIMEOUT_S,
            "`loom run` to start dbt",
        )[0]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: not alive(dbt), 10, f"dbt (pid {dbt}) to die with its parent")
    finally:
        if first.poll() is None:
            first.kill()
    assert published_marts(layout) == published_before  # readers never saw the half run

    rerun = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"(pid {first.pid}): marked failed, its warehouse slot freed" in rerun.stdout
    assert "2026-01-18 10:00  ok" in rerun.stdout
    with warehouse_instance(layout) as instance:
        statuses = sorted(run.status.value for run in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS", "SUCCESS"]
    # The same marts as the two hours run without a kill (tests/dagster_project/conftest.py).
    assert published_marts(layout) == in_order.after_h2
