"""Alert rules as pure logic (validation, the state machine), the webhook URL policy, and the
alert store on both registries (SQLite, and PostgreSQL beside a PostgreSQL catalog)."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tests.utils.postgres import PostgresServer, remove, start_postgres
from tests.utils.webhook_receiver import webhook_receiver
from warehouse.alert_rules import AlertRule
from warehouse.alert_store import MAX_ATTEMPTS, AlertStore, Judgement
from warehouse.layout import Layout
from warehouse.registry import Database, PostgresDatabase, Registry, SqliteDatabase
from warehouse.settings import Settings
from warehouse.webhooks import WebhookPolicy, WebhookRefused, post_json, refusal

CRASH_FREE = {"name": "r", "metric": "crash_free_session_rate", "critical_threshold": 99}


def rule(**fields: object) -> AlertRule:
    return AlertRule.model_validate({**CRASH_FREE, **fields})


def walk(alert: AlertRule, values: list[float], state: str = "ok") -> list[str]:
    states = []
    for value in values:
        state = alert.next_state(state, value)
        states.append(state)
    return states


def test_states_move_ok_warning_critical_resolved_without_flapping() -> None:
    alert = rule(critical_threshold=95, warning_threshold=99, resolve_threshold=99.5)
    assert walk(alert, [100, 98, 90, 97, 99.2, 99.5, 99.9, 94]) == [
        "ok", "warning", "critical", "warning", "warning", "resolved", "resolved", "critical",
    ]  # fmt: skip
    # Without a warning level, a firing rule stays critical until past the resolve threshold.
    alert = rule(critical_threshold=95, resolve_threshold=98)
    assert walk(alert, [94, 96, 97.9, 98]) == ["critical", "critical", "critical", "resolved"]


def test_error_rate_and_session_count_alert_above() -> None:
    errors = AlertRule(name="e", metric="error_rate", critical_threshold=10, warning_threshold=5)
    assert errors.threshold_type == "above" and errors.resolve_threshold == 5
    assert walk(errors, [1, 6, 11, 4]) == ["ok", "warning", "critical", "resolved"]
    low_traffic = AlertRule(
        name="s", metric="session_count", threshold_type="below", critical_threshold=100
    )
    assert walk(low_traffic, [500, 99, 100]) == ["ok", "critical", "resolved"]


@pytest.mark.parametrize(
    ("fields", "field", "kind"),
    [
        ({"metric": "crash_rate"}, "metric", "literal_error"),
        ({"critical_threshold": 101}, "critical_threshold", "threshold_out_of_range"),
        ({"critical_threshold": -1}, "critical_threshold", "threshold_out_of_range"),
        ({"warning_threshold": 90}, "warning_threshold", "threshold_order"),
        ({"resolve_threshold": 98}, "resolve_threshold", "threshold_order"),
        ({"window_hours": 0}, "window_hours", "greater_than_equal"),
        ({"min_sessions": 0}, "min_sessions", "greater_than_equal"),
        (
            {"release": "1.0", "latest_adopted_release": True},
            "latest_adopted_release",
            "release_filter",
        ),
        ({"webhook_url": "ftp://hooks.example/x"}, "webhook_url", "webhook_url"),
        ({"webhook_url": "file:///etc/passwd"}, "webhook_url", "webhook_url"),
        ({"severity": "high"}, "severity", "extra_forbidden"),
    ],
)
def test_bad_rules_name_the_field(fields: dict, field: str, kind: str) -> None:
    with pytest.raises(ValidationError) as raised:
        rule(**fields)
    [error] = raised.value.errors()
    assert (error["loc"][-1], error["type"]) == (field, kind)


def policy(**settings: object) -> WebhookPolicy:
    return WebhookPolicy.from_settings(Settings(port=8000, **settings))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/api/projects/1/alerts",
        "http://localhost:8000/",
        "http://[::1]:8000/",
    ],
)
def test_a_url_aimed_at_the_api_itself_is_refused_even_with_loopback_allowed(url: str) -> None:
    with pytest.raises(WebhookRefused, match="Loom API itself"):
        policy(alert_allow_loopback=True).check(url)


def test_an_api_on_every_interface_or_behind_a_public_url_is_itself_too() -> None:
    with pytest.raises(WebhookRefused, match="Loom API itself"):
        policy(host="0.0.0.0", alert_allow_loopback=True).check("http://127.0.0.2:8000/")
    with pytest.raises(WebhookRefused, match="Loom API itself"):
        policy(public_url="http://127.0.0.3:9443", alert_allow_loopback=True).check(
            "http://127.0.0.3:9443/x"
        )


def test_loopback_link_local_and_metadata_addresses_are_refused() -> None:
    with pytest.raises(WebhookRefused, match="loopback"):
        policy().check("http://127.0.0.1:9999/hook")
    assert policy(alert_allow_loopback=True).check("http://127.0.0.1:9999/hook")
    for address, reason in [
        ("169.254.169.254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "not a host"),
        ("100.100.100.200", "metadata"),
        ("100.64.1.1", "shared or reserved"),
        ("::ffff:127.0.0.1", "loopback"),
    ]:
        assert reason in (refusal(ipaddress.ip_address(address), False) or ""), address
    # Private networks are where self-hosted receivers live.
    for address in ("10.1.2.3", "192.168.1.10", "172.16.0.5", "8.8.8.8"):
        assert refusal(ipaddress.ip_address(address), False) is None


def test_a_delivery_is_pinned_to_the_checked_address_and_follows_no_redirect() -> None:
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        receiver.answer_next(302)
        outcome = post_json(
            f"http://localhost:{port}/hook", {"n": 1}, 5, policy(alert_allow_loopback=True)
        )
        assert outcome.status_code == 302 and not outcome.delivered
        assert not outcome.worth_retrying  # a redirect is not followed, nor retried
        [request] = receiver.received
        assert request.headers["Host"] == f"localhost:{port}" and request.body == {"n": 1}
        refused = post_json(receiver.url, {"n": 2}, 5, policy())
        assert refused.refused and "loopback" in (refused.error or "")
        assert len(receiver.received) == 1


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    remove(server)


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request: pytest.FixtureRequest, layout: Layout) -> Iterator[Registry]:
    if request.param == "sqlite":
        database: Database = SqliteDatabase(layout.registry_path)
    else:
        server = request.getfixturevalue("postgres")
        database = PostgresDatabase(server.create_database(f"alerts_{secrets.token_hex(4)}"))
    with Registry(database) as opened:
        yield opened


def test_a_change_of_state_is_recorded_once_with_its_delivery(registry: Registry) -> None:
    key = registry.create_key("acme", "web", "rw").record
    store = AlertStore(registry)
    stored = store.create_rule(key.org_id, key.project_id, rule(webhook_url="https://h.example/x"))
    critical = Judgement("critical", 90.0, "1.0", "production", 22)
    event = store.record(stored, 7, critical, {"state": "critical"})
    assert event is not None and event.name == "alert.triggered"
    # Judged again from the state it was read with (a second evaluator, a repeated tick): the
    # rule moved on meanwhile, so nothing is recorded twice.
    assert store.record(stored, 7, critical, {"state": "critical"}) is None
    [now] = store.rules(key.project_id)
    assert (now.state, now.value, now.snapshot_id) == ("critical", 90.0, 7)
    assert store.rules_behind(7) == [] and store.rules_behind(8) == [now]
    assert [e.event_id for e in store.events_after(0)] == [event.event_id]

    [due] = store.due_deliveries(10)
    assert due.payload == {"state": "critical"}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        due = store.record_attempt(due, "HTTP 500", False, True, retry_base_s=10)
        assert due.attempts == attempt
    assert due.status == "failed" and due.next_attempt_at is None
    [entry] = store.history(key.project_id)
    assert entry["webhook"]["status"] == "failed" and entry["webhook"]["attempts"] == MAX_ATTEMPTS


def test_retries_wait_longer_each_time_and_deleting_a_rule_cancels_them(registry: Registry) -> None:
    key = registry.create_key("acme", "web", "rw").record
    store = AlertStore(registry)
    stored = store.create_rule(key.org_id, key.project_id, rule(webhook_url="https://h.example/x"))
    store.record(stored, 1, Judgement("critical", 1.0, "1", "p", 10), {"state": "critical"})
    [due] = store.due_deliveries(10)
    waits = []
    for _ in range(2):
        due = store.record_attempt(due, "timed out", False, True, retry_base_s=10)
        assert due.next_attempt_at is not None
        retry_at = datetime.fromisoformat(due.next_attempt_at.replace("Z", "+00:00"))
        waits.append((retry_at - datetime.now(UTC)).total_seconds())
    assert 8 < waits[0] <= 10 and 28 < waits[1] <= 30  # 10 s, then three times as long
    assert store.due_deliveries(10) == []  # not due yet
    assert store.delete_rule(key.project_id, stored.rule_id)
    assert not store.delete_rule(key.project_id, stored.rule_id)
    assert store.rules(key.project_id) == []
    [entry] = store.history(key.project_id)  # the history stays
    assert entry["webhook"]["status"] == "canceled"
