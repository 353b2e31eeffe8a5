"""Judging alert rules on a published snapshot.

Each rule's numbers come from dbt's table function
``analytics.project_release_health_between(org, project, start, end)``, the one the read API's
windowed release list answers from: no release-health formula is repeated here. Its window is the
rule's last ``window_hours`` whole UTC hours up to the publish's newest data (the hour in progress
included, as the aggregates are hourly). Of the releases passing the rule's filters with at least
``min_sessions`` sessions there, the worst one (lowest crash-free rate, highest error rate, …)
gives the rule its value; with none, the rule is not judged and keeps its state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import duckdb

from warehouse.alert_store import AlertEvent, AlertStore, Judgement, StoredRule
from warehouse.layout import floor_hour
from warehouse.published import Publish

log = logging.getLogger(__name__)

# The newest release adopted in each environment (release_health's stage follows the last 24 h).
LATEST_ADOPTED = """
    AND (release, environment) IN (
        SELECT release, environment FROM warehouse.analytics.release_health
        WHERE org_id = $org AND project_id = $project AND adoption_stage = 'adopted'
        QUALIFY row_number() OVER (
            PARTITION BY environment ORDER BY first_seen DESC, release DESC) = 1
    )"""


@dataclass(frozen=True)
class Reading:
    """The worst release of a rule's window."""

    value: float
    release: str
    environment: str
    total_sessions: int


@dataclass(frozen=True)
class RuleResult:
    stored: StoredRule
    judgement: Judgement | None  # None: the rule could not be read (it is tried again)
    event: AlertEvent | None


def rule_window(window_hours: int, data_as_of: datetime) -> tuple[datetime, datetime]:
    """The whole hours a rule judges: the last ``window_hours`` up to the hour of the newest data,
    that hour included."""
    end = floor_hour(data_as_of) + timedelta(hours=1)
    return end - timedelta(hours=window_hours), end


def worst_release(
    cur: duckdb.DuckDBPyConnection, stored: StoredRule, start: datetime, end: datetime
) -> Reading | None:
    rule = stored.rule
    order = "ASC" if rule.threshold_type == "below" else "DESC"
    row = cur.execute(
        f"""
        SELECT {rule.column} AS value, release, environment, total_sessions
        FROM warehouse.analytics.project_release_health_between(
            $org, $project, $start::TIMESTAMP, $end::TIMESTAMP)
        WHERE total_sessions >= $min_sessions AND {rule.column} IS NOT NULL
          AND ($environment::VARCHAR IS NULL OR environment = $environment)
          AND ($release::VARCHAR IS NULL OR release = $release)
          {LATEST_ADOPTED if rule.latest_adopted_release else ""}
        ORDER BY value {order}, total_sessions DESC, release, environment
        LIMIT 1
        """,
        {
            "org": stored.org_id,
            "project": stored.project_id,
            "start": start,
            "end": end,
            "min_sessions": rule.min_sessions,
            "environment": rule.environment,
            "release": rule.release,
        },
    ).fetchall()
    if not row:
        return None
    value, release, environment, total_sessions = row[0]
    return Reading(float(value), release, environment, total_sessions)


def evaluate_rules(
    cur: duckdb.DuckDBPyConnection,
    store: AlertStore,
    rules: list[StoredRule],
    publish: Publish,
    dashboard_url: str,
) -> list[RuleResult]:
    """Judge ``rules`` on ``publish`` (``cur`` reads it) and record each; a change of state also
    records its event and webhook delivery. A rule whose query fails is logged and left for the
    next evaluation: it never stops the others."""
    data_as_of = publish.data_as_of or publish.published_at
    results = []
    for stored in rules:
        start, end = rule_window(stored.rule.window_hours, data_as_of)
        try:
            reading = worst_release(cur, stored, start, end)
        except duckdb.Error:
            log.exception("could not evaluate alert rule %s", stored.rule_id)
            results.append(RuleResult(stored, None, None))
            continue
        if reading is None:
            judgement = Judgement(stored.state, None, None, None, None)
        else:
            judgement = Judgement(
                stored.rule.next_state(stored.state, reading.value),
                reading.value,
                reading.release,
                reading.environment,
                reading.total_sessions,
            )
        payload = None
        if judgement.state != stored.state:
            payload = notification(stored, judgement, publish, (start, end), dashboard_url)
        event = store.record(stored, publish.snapshot_id, judgement, payload)
        results.append(RuleResult(stored, judgement, event))
    return results


def notification(
    stored: StoredRule,
    judgement: Judgement,
    publish: Publish,
    window: tuple[datetime, datetime],
    dashboard_url: str,
) -> dict[str, Any]:
    """The body of a change of state: the webhook's JSON and the Server-Sent Event's data."""
    rule = stored.rule
    return {
        "event": "alert.resolved" if judgement.state == "resolved" else "alert.triggered",
        "state": judgement.state,
        "previous_state": stored.state,
        "project_id": stored.project_id,
        "rule": {"id": stored.rule_id, **rule.model_dump(exclude={"webhook_url"})},
        "metric": rule.metric,
        "value": judgement.value,
        "threshold": rule.threshold_of(judgement.state),
        "release": judgement.release,
        "environment": judgement.environment,
        "sessions": judgement.total_sessions,
        "window": {
            "hours": rule.window_hours,
            "start": _iso(window[0]),
            "end": _iso(window[1]),
        },
        # The fragment names the rule and the environment judged, as the dashboard keeps them.
        "link": f"{dashboard_url}/dashboard#"
        + urlencode({"alert": stored.rule_id, "environment": judgement.environment}),
        "snapshot": {
            "id": publish.snapshot_id,
            "published_at": _iso(publish.published_at),
            "data_as_of": None if publish.data_as_of is None else _iso(publish.data_as_of),
        },
    }


def _iso(moment: datetime) -> str:
    """Naive UTC as the read API renders it."""
    return moment.replace(tzinfo=None).isoformat() + "Z"
