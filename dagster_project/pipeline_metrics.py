"""The pipeline's Prometheus metrics, written to the data directory for the API to expose.

Runs execute in other processes than the API (the warm run worker, ``loom run``), so the
pipeline does not count in the API's registry: ``pipeline_metrics_sensor`` reads the runs that
finished since its last tick from Dagster's run storage and writes ``metrics/pipeline.prom``
(prometheus-client's text format, replaced whole), which the API's ``/metrics`` adds to its own
(ingest_api/metrics.py) and node_exporter's textfile collector can read as well. The running
totals live in the sensor's cursor, so they survive restarts of the daemon.
"""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile

from dagster_project.assets.raw import raw_asset_key
from dagster_project.resources import WarehouseResource
from warehouse.layout import STREAMS

EVERY_S = 30
RUNS_PER_TICK = 200
FINISHED = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]


def empty_state() -> dict[str, Any]:
    # after: the update time of the newest run counted; last: job -> [duration, success, end]
    return {"after": 0.0, "runs": {}, "quarantined": {}, "last": {}}


def count_run(state: dict[str, Any], instance: dg.DagsterInstance, record: dg.RunRecord) -> None:
    """Add one finished run to the totals."""
    run = record.dagster_run
    status = run.status.value.lower()
    key = f"{run.job_name}|{status}"
    state["runs"][key] = state["runs"].get(key, 0) + 1
    if record.start_time is not None and record.end_time is not None:
        duration = record.end_time - record.start_time
        state["last"][run.job_name] = [duration, int(status == "success"), record.end_time]
    counted: set[str] = set()  # a backfill run records the same metadata for each of its hours
    for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = event.asset_materialization
        if materialization is None or materialization.asset_key in counted:
            continue
        for stream in STREAMS:
            if materialization.asset_key == raw_asset_key(stream):
                counted.add(materialization.asset_key)
                entry = materialization.metadata.get("records_quarantined")
                quarantined = int(entry.value) if entry is not None else 0
                state["quarantined"][stream] = state["quarantined"].get(stream, 0) + quarantined


def write_metrics(state: dict[str, Any], path: Path) -> None:
    registry = CollectorRegistry()
    runs = Counter(
        "loom_pipeline_runs", "Finished pipeline runs.", ["job", "status"], registry=registry
    )
    for key, total in state["runs"].items():
        job, status = key.split("|")
        runs.labels(job, status).inc(total)
    duration = Gauge(
        "loom_pipeline_last_run_duration_seconds",
        "How long the job's last finished run took.",
        ["job"],
        registry=registry,
    )
    success = Gauge(
        "loom_pipeline_last_run_success",
        "1 when the job's last finished run succeeded, 0 when it failed or was canceled.",
        ["job"],
        registry=registry,
    )
    ended = Gauge(
        "loom_pipeline_last_run_end_timestamp_seconds",
        "When the job's last finished run ended.",
        ["job"],
        registry=registry,
    )
    for job, (seconds, succeeded, end) in state["last"].items():
        duration.labels(job).set(seconds)
        success.labels(job).set(succeeded)
        ended.labels(job).set(end)
    quarantined = Counter(
        "loom_pipeline_quarantined_records",
        "Records the raw loads put in quarantine (raw.quarantined_records), by stream.",
        ["stream"],
        registry=registry,
    )
    for stream in STREAMS:
        quarantined.labels(stream).inc(state["quarantined"].get(stream, 0))
    Gauge(
        "loom_pipeline_metrics_written_timestamp_seconds",
        "When the pipeline last wrote these metrics.",
        registry=registry,
    ).set(time.time())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)  # a temporary file renamed over the old one


@dg.sensor(
    minimum_interval_seconds=EVERY_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Writes the pipeline's Prometheus metrics (runs by job and status, the last run's "
        "duration and status, quarantined records) to metrics/pipeline.prom in the data "
        "directory, which the API's /metrics exposes."
    ),
)
def pipeline_metrics_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else empty_state()
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=FINISHED, updated_after=datetime.fromtimestamp(state["after"], UTC)
        ),
        limit=RUNS_PER_TICK,
        order_by="update_timestamp",
        ascending=True,
    )
    for record in records:
        count_run(state, context.instance, record)
        state["after"] = record.update_timestamp.timestamp()
    write_metrics(state, warehouse.layout.pipeline_metrics_path)
    return dg.SensorResult(
        cursor=json.dumps(state),
        skip_reason=None if records else "no run finished since the last look",
    )
