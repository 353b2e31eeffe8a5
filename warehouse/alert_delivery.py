"""Delivering alert webhooks: every delivery that is due, at once, each within its timeout.

Runs on the pipeline host, off every run's path (a Dagster sensor's tick):
a receiver that hangs costs a delivery its timeout, never a run. Each attempt's outcome is stored
with the delivery (the alert history route shows it); a failed attempt is retried after
``LOOM_ALERT_RETRY_SECONDS``, three times longer each time, up to
:data:`~warehouse.alert_store.MAX_ATTEMPTS` attempts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from warehouse.alert_store import AlertStore, Delivery
from warehouse.settings import Settings
from warehouse.webhooks import Outcome, WebhookPolicy, post_json

# Deliveries attempted per call, and at once: a call lasts about one timeout however many hang.
DELIVERIES_PER_CALL = 32
PARALLEL_DELIVERIES = 8


def deliver_due(store: AlertStore, settings: Settings) -> list[tuple[Delivery, Outcome]]:
    """Attempt every due delivery (up to :data:`DELIVERIES_PER_CALL`); each as recorded after
    its attempt, with the attempt's outcome."""
    due = store.due_deliveries(DELIVERIES_PER_CALL)
    if not due:
        return []
    policy = WebhookPolicy.from_settings(settings)
    timeout = settings.alert_webhook_timeout_seconds

    def attempt(delivery: Delivery) -> Outcome:
        assert delivery.payload is not None
        return post_json(delivery.url, delivery.payload, timeout, policy)

    with ThreadPoolExecutor(min(PARALLEL_DELIVERIES, len(due))) as pool:
        outcomes = list(pool.map(attempt, due))
    return [
        (
            store.record_attempt(
                delivery,
                outcome.describe(),
                outcome.delivered,
                outcome.worth_retrying,
                settings.alert_retry_seconds,
            ),
            outcome,
        )
        for delivery, outcome in zip(due, outcomes, strict=True)
    ]
