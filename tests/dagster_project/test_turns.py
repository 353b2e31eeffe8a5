"""Scripted runs take turns: a `loom run` waits for another one of this host, and for a run the
daemon started, instead of interleaving their steps (three at once took 138 s, in turn 46 s)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg

from dagster_project.instance import WRITER_TAG, warehouse_instance
from dagster_project.jobs import HOURLY_JOB
from dagster_project.resources import WAREHOUSE_POOL
from dagster_project.run_owners import writer_turn
from warehouse.layout import Layout

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
