"""Only values the warehouse can store and compute with are accepted, and only of the types the
OpenAPI schema declares: anything else is a 400 naming the field, and nothing lands."""

from __future__ import annotations

import httpx
import pytest

from tests.ingest_api.ingest.utils.bodies import EVENT, SESSION_END, SESSION_START, errors_of
from tests.ingest_api.ingest.utils.server import Api, Tenant, landed
from warehouse.streams import INTEGER_MAX, MIN_SAMPLE_RATE

BIGINT_MAX = 2**63 - 1


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
        ("end", {"duration_ms": BIGINT_MAX + 1}, "duration_ms"),
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
            "duration_ms": BIGINT_MAX,
        },
        headers=tenant.headers,
    )

    assert (start.status_code, end.status_code) == (200, 200), (start.text, end.text)
    by_kind = {record["kind"]: record for record in landed(api.layout, "sessions", tenant.org_id)}
    assert by_kind["start"]["sample_rate"] == MIN_SAMPLE_RATE
    assert (by_kind["end"]["error_count"], by_kind["end"]["duration_ms"]) == (
        INTEGER_MAX,
        BIGINT_MAX,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration_ms": False}, "duration_ms"),
        ({"error_count": True}, "error_count"),
        ({"crash_count": 1.0}, "crash_count"),
        ({"error_count": "3"}, "error_count"),
        ({"duration_ms": "1800000"}, "duration_ms"),
    ],
)
def test_session_counts_must_be_json_integers(
    client: httpx.Client, api: Api, tenant: Tenant, change: dict, field: str
) -> None:
    response = client.post(
        "/api/sessions/end", json={**SESSION_END, **change}, headers=tenant.headers
    )

    assert response.status_code == 400, response.text
    assert [(index, named) for index, named, _ in errors_of(response)] == [(None, field)]
    assert stored(api, tenant) == 0


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
        ("/api/sessions/start", {**SESSION_START, "started_at": 1768737600000.0}),
    ],
)
def test_float_timestamps_are_400_as_the_schema_says(
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
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: cannot even be converted
        "9999-12-31T23:00:00-05:00",  # after year 9999 in UTC
        -1,
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
    ],
)
def test_timestamps_at_the_lower_bound_are_accepted(
    client: httpx.Client, api: Api, tenant: Tenant, sent: object, stored_as: str
) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "timestamp": sent}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    [record] = landed(api.layout, "events", tenant.org_id)
    assert record["timestamp"] == stored_as


def test_an_ended_at_far_in_the_future_of_year_9999_is_a_400_not_a_500(
    client: httpx.Client, tenant: Tenant
) -> None:
    response = client.post(
        "/api/sessions/end",
        json={**SESSION_END, "ended_at": "9999-12-31T23:59:59-14:00"},
        headers=tenant.headers,
    )
    assert response.status_code == 400
    assert errors_of(response) == [(None, "ended_at", "timestamp")]
