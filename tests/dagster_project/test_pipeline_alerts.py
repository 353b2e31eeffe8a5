"""Pipeline alerts through the real sensors and a real webhook receiver on loopback: a run
poisoned by an unreachable catalog is posted once with its link; a check that starts failing
(the freshness check, evaluated by the micro-batch sensor as the daemon does) is posted once per
transition; the metrics file counts the failed run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dagster_project.definitions import defs
from dagster_project.instance import warehouse_instance
from dagster_project.micro_batches import micro_batch_sensor
from dagster_project.partitions import MICRO_BATCH_JOB
from dagster_project.pipeline_alerts import failing_checks_alert, run_failure_alert
from dagster_project.pipeline_metrics import pipeline_metrics_sensor
from dagster_project.resources import WarehouseResource
from dagster_project.runner import materialize_range
from tests.utils.network import free_port
from tests.utils.webhook_receiver import Receiver, webhook_receiver
from warehouse.layout import Layout, floor_hour
from warehouse.settings import environment

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver(data_dir: Path) -> Iterator[Receiver]:
    with webhook_receiver() as running, environment({"LOOM_ALERT_WEBHOOK": running.url}):
        yield running


def tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None
) -> str | None:
    """One evaluation of ``sensor`` as the daemon makes it; the cursor it leaves."""
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"warehouse": WarehouseResource()},
    ) as context:
        result = sensor.evaluate_tick(context)
    for event in result.asset_events:  # what the daemon stores of a tick
        instance.report_runless_asset_event(event)
    return result.cursor


def test_a_poisoned_run_is_posted_once_with_its_link(receiver: Receiver, layout: Layout) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = tick(run_failure_alert, instance, None)
        metrics_cursor = tick(pipeline_metrics_sensor, instance, None)
        catalog = f"postgres:host=127.0.0.1 port={free_port()} dbname=loom connect_timeout=1"
        with environment({"LOOM_LAKE_CATALOG": catalog}):
            hour = floor_hour(datetime.now(UTC))
            run = materialize_range(hour, hour, instance, job_name=MICRO_BATCH_JOB)
        assert not run.success

        cursor = tick(run_failure_alert, instance, cursor)
        tick(run_failure_alert, instance, cursor)  # the next tick tells nothing again
        [body] = receiver.bodies()
        assert body["event"] == "pipeline.run_failed" and body["job"] == MICRO_BATCH_JOB
        assert body["run_id"] == run.run_id
        assert body["link"] == f"http://127.0.0.1:3000/runs/{run.run_id}"
        assert body["partition"] == hour.strftime("%Y-%m-%d-%H:00")
        assert body["error"]

        tick(pipeline_metrics_sensor, instance, metrics_cursor)
        families = {
            sample.name: sample
            for family in text_string_to_metric_families(layout.pipeline_metrics_path.read_text())
            for sample in family.samples
            if sample.labels.get("job", MICRO_BATCH_JOB) == MICRO_BATCH_JOB
        }
        assert families["loom_pipeline_last_run_success"].value == 0
        assert families["loom_pipeline_runs_total"].labels == {
            "job": MICRO_BATCH_JOB,
            "status": "failure",
        }
        assert families["loom_pipeline_runs_total"].value == 1


def test_a_check_that_starts_failing_is_posted_once_per_transition(
    receiver: Receiver, layout: Layout
) -> None:
    # The instance `make up` runs on: its SQLite event log is sharded by run.
    with warehouse_instance(layout) as instance:
        cursor = tick(failing_checks_alert, instance, None)
        # Files landed and nothing published: the micro-batch sensor's look fails freshness.
        folder = layout.hour_dir("events", "org_1", floor_hour(datetime.now(UTC)))
        folder.mkdir(parents=True)
        (folder / "part-1.ndjson").write_text("{}\n")
        tick(micro_batch_sensor, instance, None)
        cursor = tick(failing_checks_alert, instance, cursor)
        tick(micro_batch_sensor, instance, None)  # fails again: no news
        cursor = tick(failing_checks_alert, instance, cursor)

        [body] = receiver.bodies()
        assert body["event"] == "pipeline.checks_failing"
        [check] = body["checks"]
        assert (check["asset"], check["check"]) == ("published_snapshot", "fresh_while_data_lands")
        assert check["run_id"] is None and "nothing published" in check["description"]
        assert json.loads(cursor or "{}")["failing"] == [
            "published_snapshot:fresh_while_data_lands"
        ]
