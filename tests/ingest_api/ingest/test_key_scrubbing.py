"""An API key is never stored: not in the landing file, so not in the warehouse or what the read
API returns. posthog-js puts ``properties.token`` on every event: that property is dropped; any
other string holding a key becomes ``[Filtered]``."""

from __future__ import annotations

import httpx

from tests.ingest_api.ingest.utils.bodies import SESSION_START
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


def test_a_key_anywhere_in_a_record_lands_as_filtered(
    client: httpx.Client, api: Api, tenant: Tenant, new_tenant
) -> None:
    """Any org's key, at any depth, under any name, inside a longer text: replaced, as Sentry's
    data scrubbing does, and a warning says where."""
    other = new_tenant().key  # a key of another org is filtered too: only the format counts
    event = {
        "event": "$pageview",
        "distinct_id": f"user {other}",
        "properties": {
            "debug": {"auth": f"Bearer {tenant.key}", "list": ["ok", [f"x{other}y"]]},
            other: "a key as a property name",
            "$set": {"note": tenant.key},
            "prefix_only": "loom_analytics_ is how our keys start",
            "not_a_key": "loom_analytics_write_nothex",
        },
    }
    response = client.post("/batch/", json={"api_key": tenant.key, "batch": [event]})
    assert response.status_code == 200

    [record] = landed(api.layout, "events", tenant.org_id)
    assert record["distinct_id"] == "[Filtered]"
    assert record["properties"] == {
        "debug": {"auth": "[Filtered]", "list": ["ok", ["[Filtered]"]]},
        "[Filtered]": "a key as a property name",
        "$set": {"note": "[Filtered]"},
        "prefix_only": "loom_analytics_ is how our keys start",
        "not_a_key": "loom_analytics_write_nothex",
    }
    [warning] = landed(api.layout, "ingestion_warnings", tenant.org_id)
    assert (warning["record_uuid"], warning["kind"]) == (record["uuid"], "key_filtered")
    assert warning["details"] == {
        "fields": [
            "distinct_id",
            "properties.debug.auth",
            "properties.debug.list[1][0]",
            "properties.[Filtered]",
            "properties.$set.note",
        ],
        "count": 5,
    }
    files = b"".join(
        path.read_bytes() for path in api.layout.data_dir.joinpath("landing").rglob("part-*")
    )
    assert tenant.key.encode() not in files and other.encode() not in files


def test_keys_are_filtered_on_every_route_and_stream(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    leak = f"see {tenant.key}"
    native = {"event": tenant.key, "distinct_id": "u", "properties": {"note": leak}}
    assert client.post("/api/analytics/capture", json=native, headers=tenant.headers).is_success
    identify = {"distinct_id": "u", "anonymous_id": leak, "properties": {"email": leak}}
    assert client.post("/api/analytics/identify", json=identify, headers=tenant.headers).is_success
    start = {**SESSION_START, "release": leak}
    assert client.post("/api/sessions/start", json=start, headers=tenant.headers).is_success

    [event] = landed(api.layout, "events", tenant.org_id)
    # an event name holding a key stays an event name
    assert (event["event"], event["event_display_name"]) == ("filtered", None)
    assert event["properties"] == {"note": "[Filtered]"}
    [identity] = landed(api.layout, "identities", tenant.org_id)
    assert (identity["other_id"], identity["set"]) == ("[Filtered]", {"email": "[Filtered]"})
    [session] = landed(api.layout, "sessions", tenant.org_id)
    assert session["release"] == "[Filtered]"
    warnings = landed(api.layout, "ingestion_warnings", tenant.org_id)
    assert sorted((w["record_stream"], w["field"]) for w in warnings) == [
        ("events", "event"),
        ("identities", "other_id"),
        ("sessions", "release"),
    ]
