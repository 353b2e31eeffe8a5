"""Scripted runs take turns: a `loom run` waits for another one of this host, and for a run the
daemon started, instead of interleaving their steps (three at once took 138 s, in turn 46 s). A
run another pipeline host left unfinished in the run storage they share is waited for through the
writer lease, never forever, and let go once the lease shows its process gone."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import dagster as dg

from dagster_project.instance import WRITER_TAG, warehouse_instance
from dagster_project.jobs import HOURLY_JOB
from dagster_project.resources import WAREHOUSE_POOL
from dagster_project.run_owners import (
    HOST_TAG,
    PID_TAG,
    STARTED_TAG,
    owner_tags,
    run_owner_alive,
    writer_turn,
)
from dagster_project.run_worker import WORKER_PID_TAG
from tests.utils.lease import hold_lease
from warehouse.layout import Layout
from warehouse.settings import environment

HELD_S = 1.0


def test_a_scripted_run_waits_for_another_and_says_so(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    said: list[str] = []
    turns: list[tuple[str, float, float]] = []

    def take_turn(name: str) -> None:
        with warehouse_instance(layout) as instance, writer_turn(instance, layout, said.append):
            started = time.monotonic()
            time.sleep(HELD_S)
            turns.append((name, started, time.monotonic()))

    with warehouse_instance(layout):  # its storage created once, not by both threads at once
        pass
    first = threading.Thread(target=take_turn, args=("first",))
    first.start()
    time.sleep(0.3)
    take_turn("second")
    first.join()

    (_, _, first_end), (_, second_start, _) = sorted(turns, key=lambda turn: turn[1])
    assert second_start >= first_end  # one after the other, never together
    assert said == ["waiting for another `loom run` on this host to finish…"]


def test_a_scripted_run_waits_for_the_daemons_writer_run(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    said: list[str] = []
    with warehouse_instance(layout) as instance:
        daemon_run = instance.add_run(
            dg.DagsterRun(
                job_name=HOURLY_JOB,
                status=dg.DagsterRunStatus.STARTED,
                tags={WRITER_TAG: WAREHOUSE_POOL},
            )
        )
        finished = threading.Timer(HELD_S, instance.report_run_failed, args=[daemon_run])
        finished.start()
        started = time.monotonic()
        with writer_turn(instance, layout, said.append):
            waited = time.monotonic() - started
        finished.join()
    assert waited >= HELD_S
    assert said == [f"waiting for run {daemon_run.run_id[:8]} ({HOURLY_JOB}) to finish…"]


def test_a_run_of_a_host_gone_is_let_go_once_the_lease_is_free(tmp_path: Path) -> None:
    """A pipeline host died mid-run (kill -9, or the machine): its run stays STARTED in the shared
    storage, holding the pool's one slot. Waiting for it would hang every other host for ever."""
    layout = Layout(tmp_path / "data")
    said: list[str] = []
    owner = {HOST_TAG: "pipe-gone", PID_TAG: "4242", STARTED_TAG: "1"}
    with warehouse_instance(layout) as instance:
        gone = instance.add_run(
            dg.DagsterRun(
                job_name=HOURLY_JOB,
                status=dg.DagsterRunStatus.STARTED,
                tags={WRITER_TAG: WAREHOUSE_POOL, **owner},
            )
        )
        slots = instance.event_log_storage
        slots.set_concurrency_slots(WAREHOUSE_POOL, 1)
        assert slots.claim_concurrency_slot(WAREHOUSE_POOL, gone.run_id, "raw_events").is_claimed
        holder = hold_lease(layout, "pipe-2 pid 7 run 5f0c1e2a")
        try:  # someone holds the lease: perhaps that run, so it is not judged gone
            assert run_owner_alive(gone, layout.lake) is True
        finally:
            holder.kill()
            holder.wait()
        assert run_owner_alive(gone, layout.lake) is False

        started = time.monotonic()
        with writer_turn(instance, layout, said.append):
            assert time.monotonic() - started < 5.0
        released = instance.get_run_by_id(gone.run_id)
        assert released is not None and released.status == dg.DagsterRunStatus.FAILURE
        assert slots.get_concurrency_info(WAREHOUSE_POOL).active_slot_count == 0
    assert said == [
        f"run {gone.run_id} was left unfinished by pid 4242 of pipe-gone, which holds the lake's "
        "writer lease no more: marked failed, its warehouse slot freed"
    ]


def test_run_monitoring_judges_scripted_and_other_hosts_runs_by_their_owners(
    tmp_path: Path,
) -> None:
    """Neither a `loom run` (no worker) nor another host's run (its worker's pid is not one of
    this host's) is failed for the want of a worker here; each is judged by its owner."""
    layout = Layout(tmp_path / "data")
    dead = subprocess.Popen(["true"])
    dead.wait()

    def started_run(**tags: str) -> dg.DagsterRun:
        return dg.DagsterRun(
            job_name=HOURLY_JOB,
            status=dg.DagsterRunStatus.STARTED,
            tags={WRITER_TAG: WAREHOUSE_POOL, **tags},
        )

    here = owner_tags()
    runs = {
        "this process": started_run(**here),
        "a dead pid here": started_run(**{**here, PID_TAG: str(dead.pid)}),
        "another host, lease free": started_run(
            **{HOST_TAG: "pipe-gone", PID_TAG: "4242", STARTED_TAG: "1", WORKER_PID_TAG: "4242"}
        ),
    }
    with (
        environment({"LOOM_DATA_DIR": str(layout.data_dir)}),
        warehouse_instance(layout) as instance,
    ):
        found = {
            name: instance.run_launcher.check_run_worker_health(run).status.value
            for name, run in runs.items()
        }
    assert found == {
        "this process": "RUNNING",
        "a dead pid here": "FAILED",
        "another host, lease free": "FAILED",
    }
