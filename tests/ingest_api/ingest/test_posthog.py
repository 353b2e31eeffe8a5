"""PostHog compatibility, with the real posthog-python client against a real uvicorn server."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import datetime
from uuid import uuid4

import httpx
import orjson
import pytest
from posthog import Posthog

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def posthog_client(api: Api, tenant: Tenant) -> Iterator[tuple[Posthog, list[Exception]]]:
    errors: list[Exception] = []
    client = Posthog(
        tenant.key,
        host=api.base_url,
        gzip=True,
        flush_at=100,
        flush_interval=60,  # one /batch/ request, sent by flush()
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )
    yield client, errors
    client.shutdown()


def test_posthog_client_capture_set_set_once_alias_and_identify(
    posthog_client: tuple[Posthog, list[Exception]], api: Api, tenant: Tenant
) -> None:
    client, errors = posthog_client
    capture_uuid = str(uuid4())
    client.capture(
        "Checkout Completed",
        distinct_id="user_1",
        properties={"amount": 49.99},
        uuid=capture_uuid,
        timestamp="2026-01-18T12:00:00Z",
    )
    client.capture(
        "$pageview", distinct_id="anon_1", properties={"$current_url": "https://x.test/"}
    )
    client.set(distinct_id="user_1", properties={"plan": "pro"})
    client.set_once(distinct_id="user_1", properties={"first_seen": "2026-01-18"})
    client.alias(previous_id="anon_2", distinct_id="user_1")
    client.capture(
        "$identify",
        distinct_id="user_1",
        properties={"$anon_distinct_id": "anon_1", "$set": {"email": "a@b.c"}},
    )
    client.flush()

    assert errors == []  # every request answered 200
    events = landed(api.layout, "events", tenant.org_id)
    identities = landed(api.layout, "identities", tenant.org_id)

    assert [(e["event"], e["event_display_name"], e["distinct_id"]) for e in events] == [
        ("checkout_completed", "Checkout Completed", "user_1"),
        ("$pageview", None, "anon_1"),
    ]
    assert events[0]["uuid"] == capture_uuid  # the SDK's uuid is kept
    # PostHog's rule: the timestamp corrected by the batch's sent_at for the client's clock.
    sent = events[0]["client_time"]
    assert moment(sent["timestamp"]) == moment("2026-01-18T12:00:00Z")
    skew = moment(sent["timestamp"]) - moment(sent["sent_at"])
    assert moment(events[0]["timestamp"]) == moment(events[0]["received_at"]) + skew
    assert events[0]["properties"]["amount"] == 49.99
    assert events[0]["properties"]["$lib"] == "posthog-python"
    assert {e["source"] for e in events + identities} == {"posthog"}
    assert [
        (i["kind"], i["event"], i["distinct_id"], i["other_id"], i["set"], i["set_once"])
        for i in identities
    ] == [
        ("set", "$set", "user_1", None, {"plan": "pro"}, None),
        ("set", "$set_once", "user_1", None, None, {"first_seen": "2026-01-18"}),
        ("alias", "$create_alias", "anon_2", "user_1", None, None),
        ("identify", "$identify", "user_1", "anon_1", {"email": "a@b.c"}, None),
    ]
    # posthog-python sends $set at the top level; it is moved into properties.
    assert identities[0]["properties"]["$set"] == {"plan": "pro"}
    assert len({e["uuid"] for e in events + identities}) == 6


def test_posthog_client_retry_of_the_same_batch_keeps_uuids(
    posthog_client: tuple[Posthog, list[Exception]], api: Api, tenant: Tenant
) -> None:
    client, errors = posthog_client
    event_uuid = str(uuid4())
    for _ in range(2):
        client.capture("signed_up", distinct_id="user_1", uuid=event_uuid)
        client.flush()

    assert errors == []
    assert [e["uuid"] for e in landed(api.layout, "events", tenant.org_id)] == [
        event_uuid,
        event_uuid,
    ]


def test_posthog_client_gets_a_non_200_for_a_bad_key(api: Api) -> None:
    errors: list[Exception] = []
    client = Posthog(
        "phc_not_a_loom_key",
        host=api.base_url,
        max_retries=0,
        on_error=lambda e, b: errors.append(e),
    )
    client.capture("signed_up", distinct_id="user_1")
    client.flush()
    client.shutdown()

    assert [getattr(error, "status", None) for error in errors] == [401]


POSTHOG_EVENT = {"event": "Video Played", "distinct_id": "user_1", "properties": {"length": 30}}


@pytest.mark.parametrize("path", ["/batch/", "/capture/", "/e/", "/i/v0/e/", "/capture", "/e"])
@pytest.mark.parametrize(
    "shape",
    [
        lambda key: {**POSTHOG_EVENT, "api_key": key},
        lambda key: {"api_key": key, "batch": [POSTHOG_EVENT, POSTHOG_EVENT]},
        lambda key: {"token": key, "batch": [POSTHOG_EVENT]},
    ],
    ids=["single", "batch", "token"],
)
def test_every_posthog_path_takes_gzip_single_and_batch_bodies(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, shape
) -> None:
    body = shape(tenant.key)
    response = client.post(
        path,
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert response.status_code == 200
    assert response.json() == {"status": 1}
    records = landed(api.layout, "events", tenant.org_id)
    assert len(records) == len(body.get("batch", [body]))
    assert {(r["event"], r["event_display_name"], r["distinct_id"]) for r in records} == {
        ("video_played", "Video Played", "user_1")
    }


def test_posthog_array_body_with_key_header_and_distinct_id_in_properties(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    body = [{"event": "$pageview", "properties": {"distinct_id": "anon_7", "$session_id": "s7"}}]
    response = client.post("/e/", json=body, headers=tenant.headers)

    assert response.status_code == 200
    [record] = landed(api.layout, "events", tenant.org_id)
    assert (record["distinct_id"], record["session_id"]) == ("anon_7", "s7")


def test_posthog_merge_dangerously_and_top_level_set_on_an_event(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    body = {
        "api_key": tenant.key,
        "batch": [
            {
                "event": "$merge_dangerously",
                "distinct_id": "user_1",
                "properties": {"alias": "user_2"},
            },
            {
                "event": "upgraded",
                "distinct_id": "user_1",
                "properties": {"$set": {"a": 1}},
                "$set": {"plan": "pro"},
            },
        ],
    }
    assert client.post("/batch/", json=body).status_code == 200

    [identity] = landed(api.layout, "identities", tenant.org_id)
    [event] = landed(api.layout, "events", tenant.org_id)
    assert (identity["kind"], identity["distinct_id"], identity["other_id"]) == (
        "merge_dangerously",
        "user_1",
        "user_2",
    )
    assert event["properties"]["$set"] == {"a": 1, "plan": "pro"}


def test_invalid_posthog_batch_is_400_with_every_bad_item_and_nothing_lands(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    body = {
        "api_key": tenant.key,
        "batch": [
            POSTHOG_EVENT,
            {"event": "$create_alias", "distinct_id": "u"},
            {"distinct_id": "u"},
            {"event": "e"},
        ],
    }
    response = client.post("/batch/", json=body)

    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (1, "properties"),
        (2, "event"),
        (3, "distinct_id"),
    ]
    assert (
        landed(api.layout, "events", tenant.org_id)
        == landed(api.layout, "identities", tenant.org_id)
        == []
    )
