"""Pipeline alerts: a failed run, or an asset check that starts failing, posted to
``LOOM_ALERT_WEBHOOK`` with a link to the Dagster UI.

Dagster's run-failure sensor pattern: ``run_failure_alert`` hears of every failed run of the
project's jobs (the micro-batches, the hourly runs, retention, the data tests);
``failing_checks_alert`` reads each asset check's latest evaluation (the raw loads'
``no_quarantined_records``, dbt's data tests, the freshness check) and tells of each check that
went from passing (or never evaluated) to failing: once per transition, not once per run.

Each message is posted from the sensor itself, with two more attempts after 1 s and 3 s, each
within ``LOOM_ALERT_WEBHOOK_TIMEOUT_SECONDS``. Not through the registry's delivery queue: on a
PostgreSQL catalog the registry is in the catalog's database, and a catalog that is down is
exactly what fails the runs. A message every attempt failed for is logged in the tick, not kept.
"""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import json
import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from dagster_project.framework_workarounds import partitions_of_run
from warehouse.settings import Settings, get_settings
from warehouse.webhooks import Outcome, post_json

RETRY_WAITS_S = (1.0, 3.0)
CHECKS_EVERY_S = 30


def post_pipeline_alert(settings: Settings, body: dict[str, Any]) -> Outcome:
    """Post ``body`` to LOOM_ALERT_WEBHOOK, retried twice; the last attempt's outcome."""
    assert settings.alert_webhook is not None
    timeout = settings.alert_webhook_timeout_seconds
    outcome = post_json(settings.alert_webhook, body, timeout)
    for wait in RETRY_WAITS_S:
        if outcome.delivered or not outcome.worth_retrying:
            break
        time.sleep(wait)
        outcome = post_json(settings.alert_webhook, body, timeout)
    return outcome


def run_link(settings: Settings, run_id: str) -> str:
    return f"{settings.dagster_ui_url}/runs/{run_id}"


def _report(context: dg.SensorEvaluationContext, what: str, outcome: Outcome) -> None:
    if outcome.delivered:
        context.log.info(f"posted {what} to LOOM_ALERT_WEBHOOK: {outcome.describe()}")
    else:
        context.log.error(f"could not post {what} to LOOM_ALERT_WEBHOOK: {outcome.describe()}")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts every failed run to LOOM_ALERT_WEBHOOK, with its link in the UI.",
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
    settings = get_settings()
    if settings.alert_webhook is None:
        return dg.SkipReason("LOOM_ALERT_WEBHOOK is not set")
    run = context.dagster_run
    steps = context.get_step_failure_events()
    error = steps[0].step_failure_data.error if steps else None
    message = error.message if error is not None else context.failure_event.message
    body = {
        "event": "pipeline.run_failed",
        "job": run.job_name,
        "run_id": run.run_id,
        "partition": partitions_of_run(run.tags),
        "failed_step": steps[0].step_key if steps else None,
        "error": (message or "").strip().splitlines()[0] if (message or "").strip() else None,
        "link": run_link(settings, run.run_id),
        "at": _now(),
    }
    _report(
        context,
        f"the failure of run {run.run_id[:8]} ({run.job_name})",
        post_pipeline_alert(settings, body),
    )
    return None


@dg.sensor(
    minimum_interval_seconds=CHECKS_EVERY_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Posts each asset check that starts failing (quarantined records, a dbt data test, "
        "freshness) to LOOM_ALERT_WEBHOOK, once per transition."
    ),
)
def failing_checks_alert(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    state = json.loads(context.cursor) if context.cursor else None
    # Each check's latest execution, from the index every event log storage keeps (the default
    # SQLite one is sharded by run, and reads no evaluations across runs without a run cursor).
    keys = list(context.repository_def.asset_graph.asset_check_keys)
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    failing = set() if state is None else set(state["failing"])
    started: list[dict[str, Any]] = []
    settings = get_settings()
    for key, record in sorted(latest.items(), key=lambda item: item[1].id):
        if record.status.value == "PLANNED":
            continue  # in a run still going: judged once evaluated
        check = f"{key.asset_key.to_user_string()}:{key.name}"
        if record.status.value == "SUCCEEDED":
            failing.discard(check)
        elif check not in failing:
            failing.add(check)
            event = record.event.dagster_event if record.event is not None else None
            evaluation = event.asset_check_evaluation_data if event is not None else None
            started.append(
                {
                    "asset": key.asset_key.to_user_string(),
                    "check": key.name,
                    "description": evaluation.description if evaluation is not None else None,
                    "run_id": record.run_id or None,
                    "link": run_link(settings, record.run_id) if record.run_id else None,
                }
            )
    cursor = json.dumps({"failing": sorted(failing)})
    if state is None:  # the first tick: what was failing before it is not news
        return dg.SensorResult(cursor=cursor)
    if not started:
        return dg.SensorResult(cursor=cursor, skip_reason="no asset check started failing")
    if settings.alert_webhook is None:
        return dg.SensorResult(cursor=cursor, skip_reason="LOOM_ALERT_WEBHOOK is not set")
    body = {"event": "pipeline.checks_failing", "checks": started, "at": _now()}
    names = ", ".join(f"{c['asset']}:{c['check']}" for c in started)
    _report(context, f"failing checks {names}", post_pipeline_alert(settings, body))
    return dg.SensorResult(cursor=cursor)
