"""Materialize received hours through Dagster from a script: the same job, assets and run storage
(``Layout.dagster_home``) as the UI, one run per hour, executed in this process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import dagster as dg
from dagster._core.utils import make_new_run_id

from dagster_project.assets.raw import raw_asset_key
from dagster_project.definitions import defs
from dagster_project.jobs import HOURLY_JOB
from dagster_project.partitions import hour_key
from warehouse.layout import STREAMS, Layout

# Dagster's per-event console log would bury the one progress line per hour; errors still show.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass(frozen=True)
class HourRun:
    hour: datetime
    run_id: str
    success: bool
    seconds: float
    rows_loaded: dict[str, int] = field(default_factory=dict)
    files_read: dict[str, int] = field(default_factory=dict)
    late_records: dict[str, int] = field(default_factory=dict)
    assets_materialized: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    error: str | None = None

    def progress_line(self) -> str:
        loads = " · ".join(
            f"{stream} {self.rows_loaded.get(stream, 0):,} rows "
            f"({self.files_read.get(stream, 0):,} files, {self.late_records.get(stream, 0):,} late)"
            for stream in STREAMS
        )
        checks = f"{self.checks_passed}/{self.checks_passed + self.checks_failed} checks passed"
        status = "ok    " if self.success else "FAILED"
        line = (
            f"{self.hour:%Y-%m-%d %H:00}  {status}  {loads} · {self.assets_materialized} assets, "
            f"{checks} · {self.seconds:.1f}s"
        )
        return line if self.error is None else f"{line}\n    {self.error}"


def summarize(
    hour: datetime, result: dg.ExecuteInProcessResult, seconds: float, log_path: Path
) -> HourRun:
    metadata = {
        event.asset_key: event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }

    def per_stream(name: str) -> dict[str, int]:
        return {
            stream: int(metadata[raw_asset_key(stream)][name].value)
            for stream in STREAMS
            if raw_asset_key(stream) in metadata
        }

    evaluations = result.get_asset_check_evaluations()
    failures = result.get_step_failure_events()
    error = None
    if failures:
        failure = failures[0]
        message = failure.step_failure_data.error.message if failure.step_failure_data.error else ""
        first_line = message.strip().splitlines()[0] if message.strip() else "failed"
        error = f"{failure.step_key}: {first_line} (full output: {log_path})"
    return HourRun(
        hour=hour,
        run_id=result.run_id,
        success=result.success,
        seconds=seconds,
        rows_loaded=per_stream("rows_loaded"),
        files_read=per_stream("files_read"),
        late_records=per_stream("late_records"),
        assets_materialized=len(metadata),
        checks_passed=sum(1 for e in evaluations if e.passed),
        checks_failed=sum(1 for e in evaluations if not e.passed),
        error=error,
    )


def materialize_hours(
    hours: Iterable[datetime],
    instance: dg.DagsterInstance,
    on_hour: Callable[[HourRun], None] = lambda _: None,
) -> list[HourRun]:
    """Run the hourly pipeline for each hour in turn; stops at the first failed hour, because
    later hours build on its marts. dbt's console output of each run goes to a log file beside
    the run storage instead of the terminal."""
    job = defs.resolve_job_def(HOURLY_JOB)
    log_dir = run_log_dir(instance)
    runs = []
    for hour in hours:
        run_id = make_new_run_id()
        started = time.perf_counter()
        log_path = log_dir / f"{run_id}.log"
        with log_path.open("w") as log, redirect_stdout(log):
            result = job.execute_in_process(
                partition_key=hour_key(hour),
                instance=instance,
                run_id=run_id,
                run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
        run = summarize(hour, result, time.perf_counter() - started, log_path)
        runs.append(run)
        on_hour(run)
        if not run.success:
            break
    return runs


def run_log_dir(instance: dg.DagsterInstance) -> Path:
    folder = Path(instance.root_directory) / "loom-run-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def landed_hours(layout: Layout) -> list[datetime]:
    """Every received hour with landing files in any stream, oldest first."""
    return sorted(set().union(*(layout.landed_hours(stream) for stream in STREAMS)))
