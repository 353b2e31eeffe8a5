"""Altertable-compatible /track, through real HTTP."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed, wait_for_records

# The seed's two examples, verbatim but for the host and the key.
CURL_SYNC = """curl -X POST "https://api.altertable.ai/track?sync=true" \\
-H "X-API-Key: YOUR_API_KEY" \\
-H "Content-Type: application/json" \\
-d '{"environment":"production","event":"Purchase Completed","properties":{"amount":99.99,"currency":"USD"},"distinct_id":"u_01jza857w4f23s1hf2s61befmw","session_id":"sess_01jza8h9v6s56pj9j3a4k1yqhz"}'
"""  # noqa: E501
CURL_BATCH = """curl -X POST https://api.altertable.ai/track \\
-H "Authorization: Bearer YOUR_API_KEY" \\
-H "Content-Type: application/json" \\
-d '[{"environment":"production","event":"Checkout Started","properties":{"currency":"USD"},"distinct_id":"user_123"},{"environment":"production","event":"Checkout Completed","properties":{"currency":"USD","amount":99.99},"distinct_id":"user_123"}]'
"""  # noqa: E501


def run_curl(command: str, api: Api, tenant: Tenant) -> str:
    command = command.replace("https://api.altertable.ai", api.base_url).replace(
        "YOUR_API_KEY", tenant.key
    )
    return subprocess.run(
        ["bash", "-c", command.replace("curl ", "curl -s -w ' %{http_code}' ", 1)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout


def test_seed_curl_example_with_sync_true(api: Api, tenant: Tenant) -> None:
    output = run_curl(CURL_SYNC, api, tenant)

    assert output.endswith(" 200")  # durable before the answer
    [record] = landed(api.layout, "events", tenant.org_id)
    assert (record["event"], record["event_display_name"]) == (
        "purchase_completed",
        "Purchase Completed",
    )
    assert record["properties"] == {"amount": 99.99, "currency": "USD"}
    assert record["distinct_id"] == "u_01jza857w4f23s1hf2s61befmw"
    assert record["session_id"] == "sess_01jza8h9v6s56pj9j3a4k1yqhz"
    assert (record["environment"], record["source"], record["org_id"]) == (
        "production",
        "track",
        tenant.org_id,
    )


def test_seed_curl_batch_example_is_accepted_then_lands_within_a_second(
    api: Api, tenant: Tenant
) -> None:
    output = run_curl(CURL_BATCH, api, tenant)

    assert output.endswith(" 202")
    records = wait_for_records(api.layout, "events", tenant.org_id, 2, timeout=1.0)
    assert [(r["event"], r["event_display_name"], r["distinct_id"]) for r in records] == [
        ("checkout_started", "Checkout Started", "user_123"),
        ("checkout_completed", "Checkout Completed", "user_123"),
    ]
    assert records[1]["properties"] == {"currency": "USD", "amount": 99.99}


@pytest.mark.parametrize(
    ("sent", "native", "display"),
    [
        ("Checkout Completed", "checkout_completed", "Checkout Completed"),
        ("checkout_completed", "checkout_completed", None),
        ("Sign-Up (v2)", "sign_up_v2", "Sign-Up (v2)"),
        ("$pageview", "$pageview", None),
        ("  Video Played!  ", "video_played", "  Video Played!  "),
    ],
)
def test_display_names_are_normalized_and_kept(
    client: httpx.Client, api: Api, tenant: Tenant, sent: str, native: str, display: str | None
) -> None:
    body = {"environment": "production", "event": sent, "properties": {}, "distinct_id": "u"}
    assert client.post("/track?sync=true", json=body, headers=tenant.headers).status_code == 200
    [record] = landed(api.layout, "events", tenant.org_id)
    assert (record["event"], record["event_display_name"]) == (native, display)


@pytest.mark.parametrize("sent", ["123 Go", "!!!", "   ", "A" * 201])
def test_display_names_that_cannot_be_normalized_are_400(
    client: httpx.Client, tenant: Tenant, sent: str
) -> None:
    body = [
        {"environment": "production", "event": "ok", "properties": {}},
        {"environment": "production", "event": sent, "properties": {}},
    ]
    response = client.post("/track", json=body, headers=tenant.headers)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (1, "event")


def test_timestamps_in_unix_ms_and_iso_and_server_time_when_absent(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    base = {"environment": "production", "event": "e", "properties": {}}
    body = [
        {**base, "distinct_id": "ms", "timestamp": 1768737600000},
        {**base, "distinct_id": "iso", "timestamp": "2026-01-18T12:00:00Z"},
        {**base, "distinct_id": "none"},
    ]
    assert client.post("/track?sync=true", json=body, headers=tenant.headers).status_code == 200

    records = {r["distinct_id"]: r for r in landed(api.layout, "events", tenant.org_id)}
    assert records["ms"]["timestamp"] == records["iso"]["timestamp"] == "2026-01-18T12:00:00Z"
    assert records["none"]["timestamp"] == records["none"]["received_at"]


def test_required_fields_and_optional_ids(client: httpx.Client, api: Api, tenant: Tenant) -> None:
    missing = client.post("/track", json=[{"event": "e"}], headers=tenant.headers)
    anonymous = client.post(
        "/track?sync=true",
        json={
            "environment": "production",
            "event": "e",
            "properties": {},
            "anonymous_id": "anon_1",
            "device_id": "dev_1",
        },
        headers=tenant.headers,
    )

    assert missing.status_code == 400
    assert sorted((e["index"], e["field"]) for e in missing.json()["errors"]) == [
        (0, "environment"),
        (0, "properties"),
    ]
    assert anonymous.status_code == 200
    [record] = landed(api.layout, "events", tenant.org_id)
    # Without a distinct_id the event belongs to the anonymous id the client sent.
    assert (record["distinct_id"], record["anonymous_id"], record["device_id"]) == (
        "anon_1",
        "anon_1",
        "dev_1",
    )


@pytest.mark.parametrize("body", ["text", 5, [], [3]])
def test_body_must_be_an_event_or_a_non_empty_array(
    client: httpx.Client, tenant: Tenant, body: object
) -> None:
    response = client.post("/track", json=body, headers=tenant.headers)
    assert response.status_code == 400
    assert response.json()["errors"]


def test_async_track_is_on_disk_within_the_flush_interval(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    sent = time.monotonic()
    response = client.post(
        "/track",
        json={"environment": "production", "event": "e", "properties": {}},
        headers=tenant.headers,
    )

    assert response.status_code == 202
    assert wait_for_records(api.layout, "events", tenant.org_id, 1, timeout=1.0)
    assert time.monotonic() - sent <= api.settings.async_flush_interval_seconds + 0.5
