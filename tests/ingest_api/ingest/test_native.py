"""Native analytics endpoints: what lands, and when it is acknowledged."""

from __future__ import annotations

import time

import httpx

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed, wait_for_records
from warehouse.streams import STREAM_COLUMNS

UUID = "0b5c4a3e-1f7d-4d9a-9b1e-2a6c8e0f4d11"


def test_capture_lands_one_event_durably_with_the_contract_columns(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    response = client.post(
        "/api/analytics/capture",
        json={
            "event": "checkout.completed",
            "distinct_id": "user_1",
            "properties": {"amount": 49.99, "$set": {"plan": "pro"}},
            "timestamp": "2026-01-18T12:00:00Z",
            "uuid": UUID.upper(),
            "session_id": "ses_1",
            "environment": "staging",
        },
        headers=tenant.headers,
    )

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "durable": True}
    [record] = landed(api.layout, "events", tenant.org_id)  # on disk before the 200
    assert list(record) == list(STREAM_COLUMNS["events"])
    assert record | {"received_at": None, "ip": None} == {
        "uuid": UUID,  # the client's uuid, normalized
        "org_id": tenant.org_id,
        "project_id": tenant.record.project_id,
        "received_at": None,
        "source": "native",
        "ip": None,
        "environment": "staging",
        "event": "checkout.completed",
        "event_display_name": None,
        "distinct_id": "user_1",
        "anonymous_id": None,
        "device_id": None,
        "session_id": "ses_1",
        "properties": {"amount": 49.99, "$set": {"plan": "pro"}},
        "timestamp": "2026-01-18T12:00:00Z",
        "client_time": None,  # on Loom's own routes, the time sent is the time landed
    }
    assert record["ip"] == "127.0.0.1"


def test_batch_lands_every_event_in_one_file(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    batch = [{"event": f"step_{i}", "distinct_id": "u", "properties": {"i": i}} for i in range(50)]
    response = client.post("/api/analytics/batch", json={"batch": batch}, headers=tenant.headers)

    assert response.json() == {"accepted": 50, "durable": True}
    records = landed(api.layout, "events", tenant.org_id)
    assert [r["event"] for r in records] == [f"step_{i}" for i in range(50)]
    assert len({r["uuid"] for r in records}) == 50  # server-generated, unique
    assert (
        len(list(api.layout.stream_dir("events").glob(f"org_id={tenant.org_id}/*/*/part-*.ndjson")))
        == 1
    )


def test_identify_alias_and_set_land_in_identities(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    requests = [
        (
            "identify",
            {"distinct_id": "user_1", "anonymous_id": "anon_1", "properties": {"email": "a@b.c"}},
        ),
        ("alias", {"distinct_id": "user_1", "alias": "user_1_old"}),
        (
            "set",
            {
                "distinct_id": "user_1",
                "properties": {"plan": "pro"},
                "set_once": {"first_seen": "x"},
            },
        ),
    ]
    for path, body in requests:
        assert (
            client.post(f"/api/analytics/{path}", json=body, headers=tenant.headers).status_code
            == 200
        )

    records = landed(api.layout, "identities", tenant.org_id)
    assert all(list(r) == list(STREAM_COLUMNS["identities"]) for r in records)
    assert [
        (r["kind"], r["event"], r["distinct_id"], r["other_id"], r["set"], r["set_once"])
        for r in records
    ] == [
        ("identify", "identify", "user_1", "anon_1", {"email": "a@b.c"}, None),
        ("alias", "alias", "user_1", "user_1_old", None, None),
        ("set", "set", "user_1", None, {"plan": "pro"}, {"first_seen": "x"}),
    ]
    assert {r["source"] for r in records} == {"native"}
    assert landed(api.layout, "events", tenant.org_id) == []


def test_posthog_style_identity_events_sent_natively_land_in_identities(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    response = client.post(
        "/api/analytics/capture",
        json={
            "event": "$identify",
            "distinct_id": "user_1",
            "properties": {"$anon_distinct_id": "anon_9"},
        },
        headers=tenant.headers,
    )

    assert response.status_code == 200
    [record] = landed(api.layout, "identities", tenant.org_id)
    assert (record["kind"], record["distinct_id"], record["other_id"]) == (
        "identify",
        "user_1",
        "anon_9",
    )


def test_sync_false_answers_202_and_the_events_are_on_disk_within_a_second(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    started = time.monotonic()
    response = client.post(
        "/api/analytics/capture?sync=false",
        json={"event": "signed_up", "distinct_id": "u", "properties": {}},
        headers=tenant.headers,
    )

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "durable": False}
    records = wait_for_records(api.layout, "events", tenant.org_id, 1, timeout=1.0)
    assert len(records) == 1 and time.monotonic() - started < 1.0 + 0.5


def test_retry_with_the_same_uuid_keeps_the_uuid(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    body = {"event": "signed_up", "distinct_id": "u", "properties": {}, "uuid": UUID}
    for _ in range(2):
        assert (
            client.post("/api/analytics/capture", json=body, headers=tenant.headers).status_code
            == 200
        )

    records = landed(api.layout, "events", tenant.org_id)
    assert [r["uuid"] for r in records] == [UUID, UUID]  # counted once downstream, by uuid


def test_openapi_documents_every_route_with_models(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]

    for path in [
        "/api/analytics/capture",
        "/api/analytics/batch",
        "/api/analytics/identify",
        "/api/analytics/alias",
        "/api/analytics/set",
        "/track",
        "/batch/",
        "/capture/",
        "/e/",
        "/i/v0/e/",
        "/api/sessions/start",
        "/api/sessions/end",
    ]:
        operation = paths[path]["post"]
        assert "requestBody" in operation, path
        assert "4XX" in operation["responses"] and "422" not in operation["responses"], path
    assert "get" in paths["/healthz"] and "get" in paths["/api/keys/me"]
    schemas = spec["components"]["schemas"]
    for model in [
        "CaptureRequest",
        "BatchRequest",
        "TrackEvent",
        "SessionStart",
        "SessionEnd",
        "ErrorBody",
    ]:
        assert model in schemas, model
    # The PostHog routes read their body themselves: its schema is inlined, not a component.
    posthog_body = paths["/batch/"]["post"]["requestBody"]["content"]["application/json"]
    assert posthog_body["schema"]["oneOf"][0]["title"] == "PostHogEvent"
    assert schemas["SessionStart"]["properties"]["platform"]["enum"] == [
        "javascript",
        "node",
        "rust",
        "python",
    ]
