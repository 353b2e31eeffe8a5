"""An API key sent inside event properties (posthog-js puts ``properties.token`` on every event)
is never stored: not in the landing file, so not in the warehouse or what the read API returns."""

from __future__ import annotations

import httpx

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed

KEY_FIELDS = ("token", "api_key", "$token")


def test_keys_in_properties_never_reach_the_landing_files(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    key_everywhere = {field: tenant.key for field in KEY_FIELDS}
    posthog_js_like = [
        {
            "event": "$pageview",
            "properties": {"distinct_id": "anon_1", "$current_url": "/", **key_everywhere},
        },
        {
            "event": "$identify",
            "properties": {
                "distinct_id": "user_1",
                "$anon_distinct_id": "anon_1",
                "token": tenant.key,
                "$set": {"email": "a@b.c"},
            },
        },
    ]
    posthog = client.post("/e/", json=posthog_js_like, headers=tenant.headers)
    native = client.post(
        "/api/analytics/capture",
        json={"event": "signed_up", "distinct_id": "user_1", "properties": key_everywhere},
        headers=tenant.headers,
    )
    track = client.post(
        "/track?sync=true",
        json={"environment": "production", "event": "Clicked", "properties": {"token": tenant.key}},
        headers=tenant.headers,
    )
    assert (posthog.status_code, native.status_code, track.status_code) == (200, 200, 200)

    files = [
        path.read_text()
        for stream in ("events", "identities")
        for path in api.layout.stream_dir(stream).glob(f"org_id={tenant.org_id}/*/*/part-*")
    ]
    assert len(files) == 4
    assert not any(tenant.key in text for text in files)
    events = landed(api.layout, "events", tenant.org_id)
    assert [e["properties"] for e in events] == [
        {"distinct_id": "anon_1", "$current_url": "/"},
        {},
        {},
    ]
    [identify] = landed(api.layout, "identities", tenant.org_id)
    assert identify["properties"] == {
        "distinct_id": "user_1",
        "$anon_distinct_id": "anon_1",
        "$set": {"email": "a@b.c"},
    }


def test_properties_that_only_look_like_a_token_are_kept(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    kept = {"token": "csrf-1234", "api_key": 42, "$token": None}
    response = client.post(
        "/api/analytics/capture",
        json={"event": "signed_up", "distinct_id": "u", "properties": kept},
        headers=tenant.headers,
    )
    assert response.status_code == 200
    [event] = landed(api.layout, "events", tenant.org_id)
    assert event["properties"] == kept
