"""The instance's run launcher: hands each run to the warm run worker (run_worker.py).

Runs the daemon dequeues (schedules, sensors, the UI's launches and backfills) go to one worker
process that keeps Dagster, dbt and the definitions loaded, instead of a new interpreter per
run. The launcher starts the worker when none answers on its socket. Run monitoring asks
:meth:`WarmRunLauncher.check_run_worker_health`: a run whose worker died (``kill -9``) is
failed and its pool slots freed. Terminating a run interrupts the worker, which Dagster records
as the run canceled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import DagsterRun

from dagster_project.framework_workarounds import (
    CheckRunHealthResult,
    ConfigurableClass,
    ConfigurableClassData,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster_project.run_owners import HOST_TAG, run_owner_alive
from dagster_project.run_worker import WORKER_PID_TAG, ask_worker, worker_command
from warehouse.layout import Layout

# The worker imports Dagster, dbt and the definitions before it answers: seconds, not minutes.
WORKER_START_TIMEOUT_S = 120.0


class WarmRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> WarmRunLauncher:
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        # The worker tags the run with its pid itself, with its owner tags: two processes adding
        # tags to one run at once can lose one's (run storage rewrites the run's whole body), and
        # run monitoring failed a healthy run whose pid tag was lost so.
        pid = self._hand_over(run.run_id)
        self._instance.report_engine_event(
            f"Handed to the warm run worker (pid {pid}).", run, cls=self.__class__
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or WORKER_PID_TAG not in run.tags:
            return False
        self._instance.report_run_canceling(run)
        try:
            # The worker's run takes SIGINT as Dagster's own run processes do: it is canceled.
            os.kill(int(run.tags[WORKER_PID_TAG]), signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = run.tags.get(WORKER_PID_TAG)
        if pid is None or run.tags.get(HOST_TAG, socket.gethostname()) != socket.gethostname():
            # A `loom run`, or a run of another pipeline host sharing the run storage: its pid
            # means nothing here, its owner's liveness is told another way.
            alive = run_owner_alive(run, Layout.from_settings().lake)
            if alive is None:
                return CheckRunHealthResult(WorkerStatus.NOT_FOUND, "not handed to a worker yet")
            if alive:
                return CheckRunHealthResult(WorkerStatus.RUNNING)
            return CheckRunHealthResult(WorkerStatus.FAILED, "the process that ran it is gone")
        if _alive(int(pid)):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=pid)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run worker (pid {pid}) is gone")

    def _hand_over(self, run_id: str) -> int:
        """The pid of the worker that queued ``run_id``, started first if none is up."""
        home = Path(self._instance.root_directory)
        try:
            return ask_worker(home, run_id)
        except OSError:
            pass
        subprocess.Popen(
            worker_command(home, os.getpid()),
            env={**os.environ, "DAGSTER_HOME": str(home)},
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while True:
            try:
                return ask_worker(home, run_id)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
