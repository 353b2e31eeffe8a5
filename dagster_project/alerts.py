"""Release-health alerts: every rule judged after each publish, its webhooks delivered.

Two sensors, beside the asset they report on (``release_health_alerts``, downstream of
``published_snapshot`` in the graph):

* ``release_health_alerts_sensor`` reacts to ``published_snapshot``'s materializations, hourly or
  micro-batch: it reads the newest publish, read-only, and judges there every rule not judged on
  it yet (warehouse/alert_evaluation.py), recording changes of state with their events and
  deliveries in the registry. Each evaluation is a materialization of ``release_health_alerts``
  with the rules' states.
* ``alert_deliveries_sensor`` posts the webhooks that are due, each within its timeout, retrying
  failures with growing waits; every attempt is an observation of ``release_health_alerts``.

Sensors, not a step of the pipeline's jobs: runs execute one at a time in the warm worker, and a
step there would make every micro-batch wait on the rules and every rule's receiver; here a
receiver that hangs costs one sensor tick its timeout and no run anything, and an evaluation that
fails leaves the rules to the next tick without failing a run.
"""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

from datetime import UTC, datetime

import dagster as dg

from dagster_project.assets.lake import published_snapshot
from dagster_project.resources import WarehouseResource
from warehouse.alert_delivery import deliver_due
from warehouse.alert_evaluation import evaluate_rules
from warehouse.alert_store import AlertStore
from warehouse.duck import connect_reader
from warehouse.published import Publish

EVALUATE_EVERY_S = 10
DELIVER_EVERY_S = 5

release_health_alerts = dg.AssetSpec(
    "release_health_alerts",
    deps=[published_snapshot],
    group_name="serving",
    description=(
        "The release-health alert rules judged on the newest published snapshot (by "
        "release_health_alerts_sensor after each publish): each materialization lists the rules' "
        "states, each observation a webhook delivery's outcome. Rules: "
        "/api/projects/{id}/alerts."
    ),
)


def publish_of(event: dg.EventLogEntry) -> Publish:
    """The publish a ``published_snapshot`` materialization recorded."""
    assert event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    data_as_of = metadata.get("data_as_of")
    return Publish(
        snapshot_id=int(metadata["snapshot_id"].value),
        published_at=_naive_utc(event.timestamp),
        data_as_of=None if data_as_of is None else _naive_utc(float(data_as_of.value)),
    )


def _naive_utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


@dg.sensor(
    minimum_interval_seconds=EVALUATE_EVERY_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After each publish (hourly or micro-batch): judges every release-health alert rule on "
        "the newest published snapshot and records changes of state."
    ),
)
def release_health_alerts_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    event = context.instance.get_latest_materialization_event(published_snapshot.key)
    if event is None:
        return dg.SkipReason("nothing published yet")
    publish = publish_of(event)
    layout, settings = warehouse.layout, warehouse.settings
    with AlertStore.open(layout) as store:
        rules = store.rules_behind(publish.snapshot_id)
        if not rules:
            return dg.SkipReason(f"every rule is judged on snapshot {publish.snapshot_id}")
        with connect_reader(layout, publish.snapshot_id) as con:
            results = evaluate_rules(con, store, rules, publish, settings.api_url)
    changes = [result for result in results if result.event is not None]
    failed = [result.stored.rule_id for result in results if result.judgement is None]
    for result in changes:
        assert result.judgement is not None
        context.log.info(
            f"rule {result.stored.rule_id} ({result.stored.rule.name}): {result.stored.state} -> "
            f"{result.judgement.state} at {result.judgement.value} ({result.judgement.release})"
        )
    rows = [
        f"| {r.stored.rule_id} | {r.stored.rule.name} | "
        f"{r.judgement.state if r.judgement else r.stored.state} | "
        f"{'not read' if r.judgement is None else r.judgement.value} |"
        for r in results
    ]
    return dg.SensorResult(
        asset_events=[
            dg.AssetMaterialization(
                release_health_alerts.key,
                metadata={
                    "snapshot_id": publish.snapshot_id,
                    "rules_judged": len(results) - len(failed),
                    "state_changes": len(changes),
                    "rules_not_read": ", ".join(failed) or "none",
                    "states": dg.MetadataValue.md(
                        "\n".join(["| rule | name | state | value |", "|---|---|---|---|", *rows])
                    ),
                },
            )
        ]
    )


@dg.sensor(
    minimum_interval_seconds=DELIVER_EVERY_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Posts the alert webhooks that are due, each within LOOM_ALERT_WEBHOOK_TIMEOUT_SECONDS; "
        "failures are retried with growing waits."
    ),
)
def alert_deliveries_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    with AlertStore.open(warehouse.layout) as store:
        attempted = deliver_due(store, warehouse.settings)
    if not attempted:
        return dg.SkipReason("no webhook delivery is due")
    observations = []
    for delivery, outcome in attempted:
        context.log.info(
            f"delivery {delivery.delivery_id} (event {delivery.event_id}), attempt "
            f"{delivery.attempts}: {delivery.last_outcome} -> {delivery.status}"
        )
        payload = delivery.payload or {}
        observations.append(
            dg.AssetObservation(
                release_health_alerts.key,
                metadata={
                    "rule": payload.get("rule", {}).get("id", ""),
                    "state": str(payload.get("state", "")),
                    "attempt": delivery.attempts,
                    "outcome": delivery.last_outcome or "",
                    "delivery": delivery.status,
                    "next_attempt_at": delivery.next_attempt_at or "none",
                    "http_status": outcome.status_code or 0,
                },
            )
        )
    return dg.SensorResult(asset_events=observations)
