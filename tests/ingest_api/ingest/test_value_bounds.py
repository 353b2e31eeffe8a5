"""Only values the warehouse can store and compute with are accepted, and only of the types the
OpenAPI schema declares: anything else is a 400 naming the field, and nothing lands."""

from __future__ import annotations

import httpx
import pytest

from tests.ingest_api.ingest.utils.bodies import EVENT, SESSION_END, SESSION_START, errors_of
from tests.ingest_api.ingest.utils.server import Api, Tenant, landed
from warehouse.streams import INTEGER_MAX, MAX_SAFE_INTEGER, MIN_SAMPLE_RATE


def stored(api: Api, tenant: Tenant) -> int:
    return sum(
        len(landed(api.layout, stream, tenant.org_id))
        for stream in ("events", "identities", "sessions")
    )


@pytest.mark.parametrize(
    ("path", "change", "field"),
    [
        ("end", {"error_count": INTEGER_MAX + 1}, "error_count"),
        ("end", {"crash_count": INTEGER_MAX + 1}, "crash_count"),
        ("end", {"duration_ms": MAX_SAFE_INTEGER + 1}, "duration_ms"),
        ("start", {"sample_rate": 1e-320}, "sample_rate"),
        ("start", {"sample_rate": MIN_SAMPLE_RATE / 2}, "sample_rate"),
    ],
)
def test_numbers_beyond_their_warehouse_column_are_400(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, change: dict, field: str
) -> None:
    body = {**(SESSION_START if path == "start" else SESSION_END), **change}
    response = client.post(f"/api/sessions/{path}", json=body, headers=tenant.headers)

    assert response.status_code == 400, response.text
    [(index, named, _)] = errors_of(response)
    assert (index, named) == (None, field)
    assert stored(api, tenant) == 0


def test_numbers_at_their_bounds_are_accepted(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    start = client.post(
        "/api/sessions/start",
        json={**SESSION_START, "sample_rate": MIN_SAMPLE_RATE},
        headers=tenant.headers,
    )
    end = client.post(
        "/api/sessions/end",
        json={
            **SESSION_END,
            "error_count": INTEGER_MAX,
            "crash_count": INTEGER_MAX,
            "duration_ms": MAX_SAFE_INTEGER,
        },
        headers=tenant.headers,
    )

    assert (start.status_code, end.status_code) == (200, 200), (start.text, end.text)
    by_kind = {record["kind"]: record for record in landed(api.layout, "sessions", tenant.org_id)}
    assert by_kind["start"]["sample_rate"] == MIN_SAMPLE_RATE
    assert (by_kind["end"]["error_count"], by_kind["end"]["duration_ms"]) == (
        INTEGER_MAX,
        MAX_SAFE_INTEGER,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration_ms": False}, "duration_ms"),
        ({"error_count": True}, "error_count"),
        ({"crash_count": 1.5}, "crash_count"),
        ({"error_count": "3"}, "error_count"),
        ({"duration_ms": "1800000"}, "duration_ms"),
    ],
)
def test_session_counts_must_be_json_integers_as_the_schema_says(
    client: httpx.Client, api: Api, tenant: Tenant, change: dict, field: str
) -> None:
    response = client.post(
        "/api/sessions/end", json={**SESSION_END, **change}, headers=tenant.headers
    )

    assert response.status_code == 400, response.text
    assert [(index, named) for index, named, _ in errors_of(response)] == [(None, field)]
    assert stored(api, tenant) == 0


def test_an_integer_written_with_a_zero_fraction_is_an_integer_as_in_json_schema(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    """JSON Schema's ``integer`` (what the OpenAPI says) holds 3.0; 3.5 stays a 400 (above)."""
    response = client.post(
        "/api/sessions/end",
        json={**SESSION_END, "error_count": 3.0, "duration_ms": 670.0},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    [record] = landed(api.layout, "sessions", tenant.org_id)
    assert (record["error_count"], record["duration_ms"]) == (3, 670)


@pytest.mark.parametrize("rate", [True, "0.5"])
def test_sample_rate_must_be_a_json_number(
    client: httpx.Client, tenant: Tenant, rate: object
) -> None:
    response = client.post(
        "/api/sessions/start", json={**SESSION_START, "sample_rate": rate}, headers=tenant.headers
    )
    assert response.status_code == 400, response.text
    assert [(index, named) for index, named, _ in errors_of(response)] == [(None, "sample_rate")]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/analytics/capture", {**EVENT, "timestamp": 2.6e-42}),
        ("/api/analytics/capture", {**EVENT, "timestamp": 1768737600000.5}),
        ("/api/analytics/capture", {**EVENT, "timestamp": "1768737600000.5"}),
        ("/track", {"environment": "production", **EVENT, "timestamp": 1.5}),
        # (PostHog's routes take any timestamp, as PostHog does: test_event_time.py)
        ("/api/sessions/start", {**SESSION_START, "started_at": 1768737600000.5}),
    ],
)
def test_fractional_timestamps_are_400_as_the_schema_says(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, body: dict
) -> None:
    response = client.post(f"{path}?sync=true", json=body, headers=tenant.headers)

    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["field"] in ("timestamp", "started_at")
    assert error["type"] == "timestamp"
    assert "integer" in error["reason"]
    assert stored(api, tenant) == 0


@pytest.mark.parametrize(
    "sent",
    [
        "1969-12-31T23:59:59Z",
        "1969-12-31T23:59:59-01:00",  # 1970 in UTC, but the schema's pattern says the year sent
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: cannot even be converted
        -1,
        253402300800000,  # unix milliseconds past 9999
        "253402300800000",
        "0001-01-01",
    ],
)
def test_timestamps_outside_the_storable_range_are_400(
    client: httpx.Client, api: Api, tenant: Tenant, sent: object
) -> None:
    response = client.post(
        "/api/analytics/batch",
        json={"batch": [EVENT, {**EVENT, "timestamp": sent}]},
        headers=tenant.headers,
    )

    assert response.status_code == 400, response.text
    assert errors_of(response) == [(1, "timestamp", "timestamp")]
    assert "1970-01-01T00:00:00Z" in response.json()["errors"][0]["reason"]
    assert stored(api, tenant) == 0


@pytest.mark.parametrize(
    ("sent", "stored_as"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        (0, "1970-01-01T00:00:00Z"),
        ("1768737600000", "2026-01-18T12:00:00Z"),
        (1768737600000.0, "2026-01-18T12:00:00Z"),  # an integer to JSON Schema
        ("1970-01-01T00:30:00+01:00", "1969-12-31T23:30:00Z"),  # 1970 as written
    ],
)
def test_timestamps_at_the_lower_bound_and_as_the_schema_allows_are_accepted(
    client: httpx.Client, api: Api, tenant: Tenant, sent: object, stored_as: str
) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "timestamp": sent}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    [record] = landed(api.layout, "events", tenant.org_id)
    assert record["timestamp"] == stored_as


def test_a_year_9999_time_past_the_calendar_in_utc_is_far_future_so_gets_the_receive_time(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    """The schema allows any time in 9999 as written; with its offset this one is in the year
    10000 in UTC: later than any clock, as a far-future time it lands as the receive time."""
    response = client.post(
        "/api/sessions/end",
        json={**SESSION_END, "ended_at": "9999-12-31T23:59:59-14:00"},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    [record] = landed(api.layout, "sessions", tenant.org_id)
    assert record["ended_at"] == record["received_at"]
