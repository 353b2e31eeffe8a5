"""Every validation rule: a 4xx naming the field, the batch index and the reason; nothing lands."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from ingest_api.ingest.records import iso
from tests.ingest_api.ingest.utils.bodies import EVENT, SESSION_END, SESSION_START, errors_of
from tests.ingest_api.ingest.utils.server import Api, Tenant, landed


def nothing_landed(api: Api, tenant: Tenant) -> bool:
    return all(
        not landed(api.layout, stream, tenant.org_id)
        for stream in ("events", "identities", "sessions")
    )


@pytest.mark.parametrize(
    "name",
    ["signed_up", "$pageview", "checkout.completed", "a", "a" * 200, "x1_$.y"],
)
def test_valid_native_event_names(client: httpx.Client, tenant: Tenant, name: str) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "event": name}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "name",
    [
        "Signed_up",
        "1st_visit",
        "_private",
        ".dot",
        "signed up",
        "checkout-completed",
        "a" * 201,
        "",
        "é",
    ],
)
def test_invalid_native_event_names(
    client: httpx.Client, api: Api, tenant: Tenant, name: str
) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "event": name}, headers=tenant.headers
    )

    assert response.status_code == 400
    assert errors_of(response) == [(None, "event", "event_name")]
    assert "lowercase" in response.json()["errors"][0]["reason"]
    assert nothing_landed(api, tenant)


@pytest.mark.parametrize("distinct_id", ["", "x" * 201, 42, None])
def test_distinct_id_must_be_1_to_200_characters(
    client: httpx.Client, tenant: Tenant, distinct_id: object
) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "distinct_id": distinct_id}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert [(index, field) for index, field, _ in errors_of(response)] == [(None, "distinct_id")]


def test_distinct_id_of_200_characters_is_accepted(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "distinct_id": "x" * 200}, headers=tenant.headers
    )
    assert response.status_code == 200


@pytest.mark.parametrize("properties", ["text", [1, 2], 3])
def test_properties_must_be_an_object(
    client: httpx.Client, tenant: Tenant, properties: object
) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "properties": properties}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert errors_of(response) == [(None, "properties", "dict_type")]


def test_properties_over_1_mb_are_413_and_at_the_limit_are_accepted(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    overhead = len(orjson.dumps({"blob": ""}))
    at_limit = {"blob": "x" * (1024 * 1024 - overhead)}
    over = {"blob": "x" * (1024 * 1024 - overhead + 1)}

    accepted = client.post(
        "/api/analytics/capture", json={**EVENT, "properties": at_limit}, headers=tenant.headers
    )
    rejected = client.post(
        "/api/analytics/batch",
        json={"batch": [EVENT, {**EVENT, "properties": over}]},
        headers=tenant.headers,
    )

    assert accepted.status_code == 200
    assert rejected.status_code == 413
    assert errors_of(rejected) == [(1, "properties", "properties_too_large")]
    assert "1048577 bytes" in rejected.json()["errors"][0]["reason"]
    assert len(landed(api.layout, "events", tenant.org_id)) == 1


def test_person_properties_over_1_mb_are_413(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/analytics/set",
        json={"distinct_id": "u", "properties": {"blob": "x" * (1024 * 1024)}},
        headers=tenant.headers,
    )
    assert response.status_code == 413
    assert errors_of(response) == [(None, "properties", "properties_too_large")]


def test_properties_nested_deeper_than_json_can_store_are_400_not_500(
    client: httpx.Client, tenant: Tenant
) -> None:
    nested: dict = {}
    for _ in range(300):
        nested = {"n": nested}
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "properties": nested}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert errors_of(response) == [(None, "properties", "properties")]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (1768737600000, "2026-01-18T12:00:00Z"),
        ("1768737600123", "2026-01-18T12:00:00.123000Z"),
        ("2026-01-18T12:00:00Z", "2026-01-18T12:00:00Z"),
        ("2026-01-18T13:30:00+01:30", "2026-01-18T12:00:00Z"),
        ("2026-01-18T12:00:00.5", "2026-01-18T12:00:00.500000Z"),
    ],
)
def test_timestamps_in_unix_ms_or_iso_8601(
    client: httpx.Client, api: Api, tenant: Tenant, sent: object, stored: str
) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "timestamp": sent}, headers=tenant.headers
    )

    assert response.status_code == 200, response.text
    [record] = landed(api.layout, "events", tenant.org_id)
    assert record["timestamp"] == stored


@pytest.mark.parametrize("sent", ["yesterday", "2026-13-01T00:00:00Z", True, {"at": 1}, 1e20])
def test_unparseable_timestamps_are_400(client: httpx.Client, tenant: Tenant, sent: object) -> None:
    response = client.post(
        "/api/analytics/batch",
        json={"batch": [EVENT, {**EVENT, "timestamp": sent}]},
        headers=tenant.headers,
    )
    assert response.status_code == 400
    assert errors_of(response) == [(1, "timestamp", "timestamp")]


def test_far_future_timestamps_get_server_time_and_keep_the_sent_value(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    now = datetime.now(UTC)
    tolerance = timedelta(hours=api.settings.future_timestamp_tolerance_hours)
    near = now + tolerance - timedelta(minutes=5)
    far = now + tolerance + timedelta(minutes=5)
    response = client.post(
        "/api/analytics/batch",
        json={
            "batch": [
                {**EVENT, "distinct_id": "near", "timestamp": near.isoformat()},
                {**EVENT, "distinct_id": "far", "timestamp": far.isoformat()},
            ]
        },
        headers=tenant.headers,
    )

    assert response.status_code == 200
    records = {r["distinct_id"]: r for r in landed(api.layout, "events", tenant.org_id)}
    assert records["near"]["timestamp"] == iso(near)
    assert "$sent_timestamp" not in records["near"]["properties"]
    assert records["far"]["timestamp"] == records["far"]["received_at"]
    assert records["far"]["properties"] == {"plan": "pro", "$sent_timestamp": iso(far)}
    # the time sent is kept where the rule replaced it, and only there
    assert (records["near"]["client_time"], records["far"]["client_time"]) == (
        None,
        {"timestamp": iso(far)},
    )


def test_a_batch_is_atomic_and_lists_every_bad_item(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    batch = [
        EVENT,
        {**EVENT, "event": "Bad Name"},
        EVENT,
        {**EVENT, "distinct_id": "", "properties": []},
        "not an object",
    ]
    response = client.post("/api/analytics/batch", json={"batch": batch}, headers=tenant.headers)

    assert response.status_code == 400
    assert errors_of(response) == [
        (1, "event", "event_name"),
        (3, "distinct_id", "string_too_short"),
        (3, "properties", "dict_type"),
        (4, "batch[4]", "model_attributes_type"),
    ]
    assert response.json()["detail"] == "4 invalid field(s) in 3 item(s); nothing was stored"
    assert nothing_landed(api, tenant)


def test_empty_batch_is_400(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post("/api/analytics/batch", json={"batch": []}, headers=tenant.headers)
    assert response.status_code == 400
    assert errors_of(response) == [(None, "batch", "too_short")]


def test_native_endpoints_reject_unknown_fields(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "distinctId": "u"}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert errors_of(response) == [(None, "distinctId", "extra_forbidden")]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/api/analytics/alias", {"distinct_id": "u1", "alias": "u1"}, [(None, "alias", "alias")]),
        ("/api/analytics/alias", {"distinct_id": "u1"}, [(None, "alias", "missing")]),
        ("/api/analytics/identify", {"anonymous_id": "a1"}, [(None, "distinct_id", "missing")]),
        (
            "/api/analytics/set",
            {"distinct_id": "u1", "properties": {}, "set_once": 5},
            [(None, "set_once", "dict_type")],
        ),
        (
            "/api/analytics/capture",
            {**EVENT, "event": "$create_alias"},
            [(None, "properties", "identity")],
        ),
        (
            "/api/analytics/capture",
            {"event": "$create_alias", "distinct_id": "u"},
            [(None, "properties", "identity")],
        ),
        (
            "/api/analytics/capture",
            {**EVENT, "event": "$identify", "properties": {"$anon_distinct_id": ""}},
            [(None, "properties", "identity")],
        ),
    ],
)
def test_identity_operation_rules(
    client: httpx.Client, tenant: Tenant, path: str, body: dict, expected: list
) -> None:
    response = client.post(path, json=body, headers=tenant.headers)
    assert response.status_code == 400
    assert errors_of(response) == expected


@pytest.mark.parametrize(
    ("path", "change", "field", "kind"),
    [
        ("start", {"platform": "cobol"}, "platform", "literal_error"),
        ("start", {"platform": "JavaScript"}, "platform", "literal_error"),
        ("start", {"sample_rate": 0}, "sample_rate", "greater_than_equal"),
        ("start", {"sample_rate": -0.5}, "sample_rate", "greater_than_equal"),
        ("start", {"sample_rate": 1.01}, "sample_rate", "less_than_equal"),
        ("start", {"sample_rate": "lots"}, "sample_rate", "float_type"),
        ("start", {"started_at": "soon"}, "started_at", "timestamp"),
        ("start", {"session_id": ""}, "session_id", "string_too_short"),
        ("end", {"status": "active"}, "status", "literal_error"),
        ("end", {"status": "ok"}, "status", "literal_error"),
        ("end", {"error_count": -1}, "error_count", "greater_than_equal"),
        ("end", {"crash_count": "many"}, "crash_count", "int_type"),
        ("end", {"duration_ms": -5}, "duration_ms", "greater_than_equal"),
    ],
)
def test_session_rules(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, change: dict, field: str, kind: str
) -> None:
    body = {**(SESSION_START if path == "start" else SESSION_END), **change}
    response = client.post(f"/api/sessions/{path}", json=body, headers=tenant.headers)

    assert response.status_code == 400
    assert errors_of(response) == [(None, field, kind)]
    assert nothing_landed(api, tenant)


def test_sample_rate_of_exactly_1_and_a_small_one_are_accepted(
    client: httpx.Client, tenant: Tenant
) -> None:
    for rate in (1, 0.001):
        response = client.post(
            "/api/sessions/start",
            json={**SESSION_START, "sample_rate": rate},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text


def test_body_that_is_not_json_is_400(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/analytics/capture",
        content=b'{"event": "signed_up",',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert errors_of(response) == [(None, "body", "json_invalid")]
    assert "not valid JSON" in response.json()["errors"][0]["reason"]


def test_body_with_a_non_json_content_type_is_415(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/analytics/capture", data={"event": "signed_up"}, headers=tenant.headers
    )
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["detail"]


def test_missing_body_is_400(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/analytics/capture", headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["reason"] == "a JSON body is required"


@pytest.mark.parametrize("body", [[EVENT], "signed_up", 7, None])
def test_body_of_the_wrong_type_is_400(client: httpx.Client, tenant: Tenant, body: object) -> None:
    response = client.post("/api/analytics/capture", json=body, headers=tenant.headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


def test_request_over_the_size_limit_is_413(client: httpx.Client, api: Api, tenant: Tenant) -> None:
    limit = api.settings.max_request_bytes
    body = orjson.dumps(
        {
            "batch": [{**EVENT, "properties": {"b": "x" * (512 * 1024)}}]
            * (limit // (512 * 1024) + 1)
        }
    )
    assert len(body) > limit

    response = client.post(
        "/api/analytics/batch",
        content=body,
        headers={**tenant.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert f"larger than {limit} bytes" in response.json()["detail"]
    assert nothing_landed(api, tenant)


def test_gzip_that_inflates_over_the_size_limit_is_413(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (api.settings.max_request_bytes + 10) + b"]}")
    assert len(bomb) < 100_000

    response = client.post(
        "/api/analytics/batch",
        content=bomb,
        headers={**tenant.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert response.status_code == 413


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("gzip", b"not gzip at all", 400),
        ("gzip", gzip.compress(orjson.dumps(EVENT), mtime=0)[:-10], 400),
        ("br", b"{}", 415),
    ],
    # Named, not by their bytes: xdist's workers must collect the same ids.
    ids=["not gzip", "truncated gzip", "brotli"],
)
def test_broken_or_unknown_content_encoding_is_4xx(
    client: httpx.Client, tenant: Tenant, encoding: str, body: bytes, status: int
) -> None:
    response = client.post(
        "/api/analytics/capture",
        content=body,
        headers={
            **tenant.headers,
            "Content-Type": "application/json",
            "Content-Encoding": encoding,
        },
    )
    assert response.status_code == status


def test_bad_query_parameter_is_400(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/analytics/capture?sync=perhaps", json=EVENT, headers=tenant.headers
    )
    assert response.status_code == 400
    assert errors_of(response) == [(None, "query.sync", "bool_parsing")]


@pytest.mark.parametrize("uuid", ["not-a-uuid", "0b5c4a3e1f7d4d9a9b1e2a6c8e0f4d11", 12])
def test_uuid_must_be_a_canonical_uuid(client: httpx.Client, tenant: Tenant, uuid: object) -> None:
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "uuid": uuid}, headers=tenant.headers
    )
    assert response.status_code == 400
    [(index, field, kind)] = errors_of(response)
    assert (index, field) == (None, "uuid") and kind in ("uuid", "string_type")
