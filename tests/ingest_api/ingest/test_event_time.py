"""When a record happened: PostHog's ``parseEventTimestamp`` for PostHog events, Relay's clock
drift correction for Sentry envelopes, Loom's own rule elsewhere; every correction or fallback
lands an ingestion warning beside its record. The rules one by one on the pure function, then
through uvicorn with the bodies the SDKs send."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from ingest_api.ingest import event_time
from tests.ingest_api.ingest.utils.server import Api, Tenant, landed

NOW = datetime(2026, 1, 18, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=23)
HOUR = timedelta(hours=1)
FUTURE = ("event_timestamp_in_future", "timestamp")
INVALID = "ignored_invalid_timestamp"
T9, T10 = "2026-01-18T09:00:00Z", "2026-01-18T10:00:00Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("timestamp", "sent_at", "offset", "ignore", "expected", "warnings"),
    [
        # nothing sent: the receive time
        (None, None, None, None, NOW, []),
        # a timestamp alone is taken as sent
        (T9, None, None, None, at(T9), []),
        # with sent_at, corrected for the client's clock: now + (timestamp - sent_at)
        (T9, T10, None, None, NOW - HOUR, []),
        # ... unless $ignore_sent_at
        (T9, T10, None, True, at("2026-01-18T09:00Z"), []),
        # unix milliseconds, as Loom's timestamps take them
        (1768726800000, 1768730400000, None, None, NOW - HOUR, []),
        # offset (posthog-js batches): now - offset
        (None, None, 90_000, None, NOW - timedelta(seconds=90), []),
        # an offset wins over a corrected timestamp, not over one taken as sent (PostHog's order)
        (T9, T10, 1000, None, NOW - timedelta(seconds=1), []),
        (T9, None, 1000, None, at(T9), []),
        # more than 23 h ahead: the receive time
        ("2026-01-20T12:00:00Z", None, None, None, NOW, [FUTURE]),
        ("2026-01-19T10:00:00Z", None, None, None, at("2026-01-19T10:00:00Z"), []),
        # ... however it got there: a clock a week slow still gives a past time
        ("2026-01-25T11:00:00Z", "2026-01-25T12:00:00Z", None, None, NOW - HOUR, []),
        (None, None, -2 * 86_400_000, None, NOW, [FUTURE]),
        # invalid: the receive time, with a warning naming the field
        ("yesterday", None, None, None, NOW, [(INVALID, "timestamp")]),
        ("1969-07-20T20:17:00Z", None, None, None, NOW, [(INVALID, "timestamp")]),
        (None, None, "soon", None, NOW, [(INVALID, "offset")]),
        # an invalid sent_at is ignored: the timestamp is taken as sent
        (T9, "never", None, None, at(T9), [(INVALID, "sent_at")]),
    ],
)  # fmt: skip
def test_posthog_rule(timestamp, sent_at, offset, ignore, expected, warnings) -> None:
    resolved = event_time.posthog(timestamp, sent_at, offset, ignore, NOW, DAY)

    assert resolved.moment == expected
    assert [(w.kind, w.field) for w in resolved.warnings] == warnings


@pytest.mark.parametrize(
    ("sent_at", "corrected_by", "warnings"),
    [
        (None, None, []),
        ("2026-01-18T10:00:00Z", 2 * HOUR, ["clock_drift"]),  # the SDK's clock is 2 h slow
        ("2026-01-18T13:00:00Z", -HOUR, ["clock_drift"]),  # ... or 1 h fast
        ("2026-01-18T11:10:00Z", None, []),  # 50 minutes: latency, not drift (Relay: >= 55)
        (1768730400, 2 * HOUR, ["clock_drift"]),  # seconds? no: Loom reads numbers as unix ms
        ("tomorrow", None, ["ignored_invalid_timestamp"]),
    ],
)
def test_relay_clock_drift(sent_at, corrected_by, warnings) -> None:
    clock = event_time.EnvelopeClock.of(sent_at, NOW)
    started = at("2026-01-18T09:30:00Z")
    resolved = clock.correct(started, "started")

    assert resolved.moment == started + (corrected_by or timedelta())
    assert [w.kind for w in resolved.warnings] == warnings


# -- through HTTP ------------------------------------------------------------------------------


def by_event(api: Api, tenant: Tenant) -> dict[str, dict]:
    return {record["event"]: record for record in landed(api.layout, "events", tenant.org_id)}


def warnings_of(api: Api, tenant: Tenant) -> dict[tuple[str, str, str], dict]:
    """(record uuid, kind, field) -> the warning landed about it."""
    return {
        (w["record_uuid"], w["kind"], w["field"]): w
        for w in landed(api.layout, "ingestion_warnings", tenant.org_id)
    }


def test_posthog_js_batches_get_now_minus_offset(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    """posthog-js (before capture-body) sends events with an offset and no timestamp, and its
    send time as ``_`` in the query."""
    properties = {"distinct_id": "a", "token": tenant.key}
    events = [
        {"event": "early", "offset": 60_000, "properties": properties},
        {"event": "late", "offset": 250, "properties": properties},
    ]
    response = client.post(
        "/e/?compression=gzip-js&ip=0&_=1768737600000&ver=1.398.1",
        content=gzip.compress(orjson.dumps(events)),
        headers={"Content-Type": "text/plain"},
    )

    assert response.status_code == 200
    records = by_event(api, tenant)
    for name, offset in (("early", 60_000), ("late", 250)):
        received = at(records[name]["received_at"])
        assert at(records[name]["timestamp"]) == received - timedelta(milliseconds=offset)
        assert records[name]["client_time"] == {"sent_at": "1768737600000", "offset": offset}
    assert warnings_of(api, tenant) == {}


def test_posthog_timestamps_are_corrected_by_sent_at_and_fall_back_with_warnings(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    """posthog-node and posthog-python send ``{"batch": [...], "sent_at": ...}``; a phone that
    queued events offline for hours with its clock an hour slow sends the same."""
    now = datetime.now(UTC)
    slow = now - HOUR  # the phone's clock
    ignore = {"$ignore_sent_at": True}
    batch = [
        {"event": "queued", "timestamp": (slow - 5 * HOUR).isoformat()},
        {"event": "kept", "timestamp": T9, "properties": ignore},
        {"event": "broken", "timestamp": "not a time"},
        {
            "event": "ahead",
            "timestamp": (now + timedelta(days=3)).isoformat(),
            "properties": ignore,
        },
    ]
    body = {
        "api_key": tenant.key,
        "sent_at": slow.isoformat(),
        "batch": [{**event, "distinct_id": "phone_1"} for event in batch],
    }
    assert client.post("/batch/", json=body).status_code == 200
    assert client.post("/batch/", json=body).status_code == 200  # a retry: lands the same uuids

    records = by_event(api, tenant)
    queued = records["queued"]
    received = at(queued["received_at"])
    assert at(queued["timestamp"]) == received - 5 * HOUR
    assert queued["client_time"] == {"timestamp": batch[0]["timestamp"], "sent_at": body["sent_at"]}
    assert records["kept"]["timestamp"] == "2026-01-18T09:00:00Z"
    assert records["broken"]["timestamp"] == records["broken"]["received_at"]
    assert records["ahead"]["timestamp"] == records["ahead"]["received_at"]
    assert records["ahead"]["properties"]["$sent_timestamp"] == batch[3]["timestamp"].replace(
        "+00:00", "Z"
    )

    warnings = warnings_of(api, tenant)
    assert set(warnings) == {
        (records["broken"]["uuid"], "ignored_invalid_timestamp", "timestamp"),
        (records["ahead"]["uuid"], "event_timestamp_in_future", "timestamp"),
    }
    invalid = warnings[records["broken"]["uuid"], "ignored_invalid_timestamp", "timestamp"]
    assert invalid["details"]["value"] == "not a time"
    assert invalid["record_stream"] == "events"
    # The retry landed every record and warning again, under the same uuids.
    assert len(landed(api.layout, "ingestion_warnings", tenant.org_id)) == 4
    assert len({w["uuid"] for w in landed(api.layout, "ingestion_warnings", tenant.org_id)}) == 2


def test_identity_events_get_the_same_rule(client: httpx.Client, api: Api, tenant: Tenant) -> None:
    body = {
        "api_key": tenant.key,
        "sent_at": "2026-01-18T10:00:00Z",
        "batch": [
            {
                "event": "$identify",
                "distinct_id": "user_1",
                "timestamp": "2026-01-18T09:30:00Z",
                "properties": {"$anon_distinct_id": "anon_1"},
            }
        ],
    }
    assert client.post("/batch/", json=body).status_code == 200

    [identify] = landed(api.layout, "identities", tenant.org_id)
    assert at(identify["timestamp"]) == at(identify["received_at"]) - timedelta(minutes=30)
    assert identify["client_time"]["sent_at"] == "2026-01-18T10:00:00Z"


def test_native_far_future_times_land_a_warning(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    event = {"event": "signed_up", "distinct_id": "u", "timestamp": ahead}
    assert client.post("/api/analytics/capture", json=event, headers=tenant.headers).is_success

    [record] = landed(api.layout, "events", tenant.org_id)
    [warning] = landed(api.layout, "ingestion_warnings", tenant.org_id)
    assert record["timestamp"] == record["received_at"]
    assert (warning["record_uuid"], warning["kind"]) == (
        record["uuid"],
        "event_timestamp_in_future",
    )
    # a warning is not a record the client sent
    response = client.post("/api/analytics/capture", json=event, headers=tenant.headers)
    assert response.json()["accepted"] == 1


def envelope(sent_at: str | None, started: str, timestamp: str) -> bytes:
    header = {"sent_at": sent_at} if sent_at else {}
    session = {
        "sid": "7c3d1a1e-0000-4000-8000-000000000001",
        "did": "user_1",
        "started": started,
        "timestamp": timestamp,
        "status": "exited",
        "attrs": {"release": "shop@1.0.0"},
    }
    bucket = {"started": started, "exited": 2}
    aggregates = {"attrs": {"release": "shop@1.0.0"}, "aggregates": [bucket]}
    lines = [header, {"type": "session"}, session, {"type": "sessions"}, aggregates]
    return b"\n".join(orjson.dumps(line) for line in lines)


def test_sentry_session_times_are_corrected_for_clock_drift(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    """An SDK whose clock is three hours slow: Relay moves every session time three hours on."""
    slow = datetime.now(UTC) - 3 * HOUR
    started, ended = slow - timedelta(minutes=20), slow - timedelta(minutes=1)
    body = envelope(slow.isoformat(), started.isoformat(), ended.isoformat())
    path = f"/api/{tenant.record.project_id}/envelope/"
    assert client.post(path, content=body, headers=tenant.headers).status_code == 200

    start, end = landed(api.layout, "sessions", tenant.org_id)
    [bucket] = landed(api.layout, "session_aggregates", tenant.org_id)
    drift = at(start["received_at"]) - slow
    assert at(start["started_at"]) == started + drift
    assert at(end["ended_at"]) == ended + drift
    assert at(bucket["started_at"]) == started + drift
    assert start["client_time"]["sent_at"] == slow.isoformat()
    warnings = landed(api.layout, "ingestion_warnings", tenant.org_id)
    kinds = {(w["record_stream"], w["field"], w["kind"]) for w in warnings}
    assert kinds == {
        ("sessions", "started", "clock_drift"),
        ("sessions", "timestamp", "clock_drift"),
        ("session_aggregates", "started", "clock_drift"),
    }


def test_sentry_times_within_55_minutes_of_the_server_stay_as_sent(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    sent = datetime.now(UTC) - timedelta(minutes=30)
    body = envelope(sent.isoformat(), "2026-01-18T09:00:00Z", "2026-01-18T09:10:00Z")
    path = f"/api/{tenant.record.project_id}/envelope/"
    assert client.post(path, content=body, headers=tenant.headers).status_code == 200

    start, end = landed(api.layout, "sessions", tenant.org_id)
    assert (start["started_at"], end["ended_at"]) == (
        "2026-01-18T09:00:00Z",
        "2026-01-18T09:10:00Z",
    )
    assert landed(api.layout, "ingestion_warnings", tenant.org_id) == []


def test_person_profile_flags_that_posthog_warns_of(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    """Only a boolean $process_person_profile counts; an identify may not turn it off (stored,
    applied to no person by the models: test_marts.py)."""
    batch = [
        {"event": "viewed", "properties": {"$process_person_profile": "false"}},
        {"event": "quiet", "properties": {"$process_person_profile": False}},
        {"event": "$identify", "properties": {"$process_person_profile": False,
                                              "$anon_distinct_id": "anon_1"}},
    ]  # fmt: skip
    body = {"api_key": tenant.key, "batch": [{**e, "distinct_id": "u"} for e in batch]}
    assert client.post("/batch/", json=body).status_code == 200

    [identify] = landed(api.layout, "identities", tenant.org_id)
    assert identify["properties"]["$process_person_profile"] is False
    landed_warnings = landed(api.layout, "ingestion_warnings", tenant.org_id)
    warnings = {(w["kind"], w["details"]["event"]) for w in landed_warnings}
    assert warnings == {
        ("invalid_process_person_profile", "viewed"),
        ("invalid_event_when_process_person_profile_is_false", "$identify"),
    }
