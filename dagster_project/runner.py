"""Materialize received hours through Dagster from a script: the same job, assets and run storage
(``Layout.dagster_home``) as the UI, one run per hour, executed in this process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

from dagster_project.assets.raw import raw_asset_key
from dagster_project.definitions import defs
from dagster_project.framework_workarounds import partition_range_tags
from dagster_project.jobs import HOURLY_JOB
from dagster_project.partitions import hour_key
from dagster_project.run_owners import owner_tags
from warehouse.layout import STREAMS, Layout

# Dagster's per-event console log would bury the one progress line per hour; errors still show.
WARN = dg.AssetCheckSeverity.WARN
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass(frozen=True)
class HourRun:
    """One run of the hourly pipeline: one hour, or a range of hours as one backfill run."""

    hour: datetime  # the first (or only) hour
    run_id: str
    success: bool
    seconds: float
    rows_loaded: dict[str, int] = field(default_factory=dict)
    files_read: dict[str, int] = field(default_factory=dict)
    late_records: dict[str, int] = field(default_factory=dict)
    records_quarantined: dict[str, int] = field(default_factory=dict)
    assets_materialized: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    checks_warned: int = 0  # warn-severity checks that did not pass, e.g. ingestion warnings
    error: str | None = None
    last_hour: datetime | None = None  # the last hour of a range
    rows_by_hour: dict[str, dict[datetime, int]] = field(default_factory=dict)  # by stream

    def hour_lines(self) -> list[str]:
        """One line per hour of the run: the rows it loaded of each stream."""
        last = self.last_hour or self.hour
        count = int((last - self.hour) / timedelta(hours=1)) + 1
        lines = []
        for hour in (self.hour + timedelta(hours=n) for n in range(count)):
            loads = " · ".join(
                f"{stream} {self.rows_by_hour.get(stream, {}).get(hour, 0):,}" for stream in STREAMS
            )
            lines.append(f"{hour:%Y-%m-%d %H:00}  loaded  {loads}")
        return lines

    def progress_line(self) -> str:
        loads = " · ".join(
            f"{stream} {self.rows_loaded.get(stream, 0):,} rows "
            f"({self.files_read.get(stream, 0):,} files, {self.late_records.get(stream, 0):,} late"
            f"{self._quarantined(stream)})"
            for stream in STREAMS
        )
        total = self.checks_passed + self.checks_failed + self.checks_warned
        checks = f"{self.checks_passed}/{total} checks passed"
        if self.checks_warned:
            checks += f", {self.checks_warned} warned"
        status = "ok    " if self.success else "FAILED"
        hours = f"{self.hour:%Y-%m-%d %H:00}"
        if self.last_hour is not None and self.last_hour != self.hour:
            count = int((self.last_hour - self.hour) / timedelta(hours=1)) + 1
            hours += f" to {self.last_hour:%Y-%m-%d %H:00} ({count} hours, one run)"
        line = (
            f"{hours}  {status}  {loads} · {self.assets_materialized} assets, "
            f"{checks} · {self.seconds:.1f}s"
        )
        return line if self.error is None else f"{line}\n    {self.error}"

    def _quarantined(self, stream: str) -> str:
        count = self.records_quarantined.get(stream, 0)
        return f", {count:,} QUARANTINED" if count else ""


def summarize(
    hours: tuple[datetime, datetime],
    result: dg.ExecuteInProcessResult,
    seconds: float,
    log_path: Path,
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
        hour=hours[0],
        last_hour=hours[1],
        run_id=result.run_id,
        success=result.success,
        seconds=seconds,
        rows_loaded=per_stream("rows_loaded"),
        files_read=per_stream("files_read"),
        late_records=per_stream("late_records"),
        records_quarantined=per_stream("records_quarantined"),
        rows_by_hour={
            stream: {
                datetime.fromisoformat(hour): int(rows)
                for hour, rows in metadata[raw_asset_key(stream)]["rows_by_hour"].value.items()
            }
            for stream in STREAMS
            if raw_asset_key(stream) in metadata
        },
        assets_materialized=len(metadata),
        checks_passed=sum(1 for e in evaluations if e.passed),
        checks_failed=sum(1 for e in evaluations if not e.passed and e.severity != WARN),
        checks_warned=sum(1 for e in evaluations if not e.passed and e.severity == WARN),
        error=error,
    )


def materialize_hours(
    hours: Iterable[datetime],
    instance: dg.DagsterInstance,
    on_hour: Callable[[HourRun], None] = lambda _: None,
) -> list[HourRun]:
    """Run the hourly pipeline for each hour in turn; stops at the first failed hour, because
    later hours build on its marts."""
    runs = []
    for hour in hours:
        run = materialize_range(hour, hour, instance)
        runs.append(run)
        on_hour(run)
        if not run.success:
            break
    return runs


def materialize_range(
    first: datetime, last: datetime, instance: dg.DagsterInstance, job_name: str = HOURLY_JOB
) -> HourRun:
    """The hours ``first``..``last`` (inclusive) as one run, as a backfill from the UI runs them
    (every asset has a single-run backfill policy: the raw loads read all the range's files at
    once, dbt builds the range as one window); with ``job_name`` the micro-batch job, a
    micro-batch of those hours. dbt's console output goes to a log file beside the run storage
    instead of the terminal."""
    job = defs.resolve_job_def(job_name)
    run_id = str(uuid.uuid4())  # as Dagster makes its own
    log_path = run_log_dir(instance) / f"{run_id}.log"
    if first == last:
        selection: dict = {"partition_key": hour_key(first)}
        tags = owner_tags()
    else:
        selection = {}
        tags = {**partition_range_tags(hour_key(first), hour_key(last)), **owner_tags()}
    started = time.perf_counter()
    with log_path.open("w") as log, redirect_stdout(log):
        result = job.execute_in_process(
            **selection,
            instance=instance,
            run_id=run_id,
            run_config=QUIET_RUN_CONFIG,
            tags=tags,
            raise_on_error=False,
        )
    return summarize((first, last), result, time.perf_counter() - started, log_path)


def run_log_dir(instance: dg.DagsterInstance) -> Path:
    folder = Path(instance.root_directory) / "loom-run-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def landed_hours(layout: Layout) -> list[datetime]:
    """Every received hour with landing files in any stream, oldest first."""
    return sorted(set().union(*(layout.landed_hours(stream) for stream in STREAMS)))
