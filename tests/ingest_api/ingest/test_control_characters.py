"""Text the warehouse keeps in a column of its own (ids, names, releases, environments, person
property names, what models extract from properties) holds no control character: through the
running API each is a 400 naming the field, and nothing lands. A NUL in a ``distinct_id`` used to
be accepted and then failed every pipeline run of its hour, for every org (DuckLake writes pushed-
down filter constants into its catalog's SQL; see warehouse/streams.py). Free-text properties keep
control characters, JSON-escaped."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.ingest_api.ingest.utils.bodies import EVENT, SESSION_END, SESSION_START
from tests.ingest_api.ingest.utils.server import Api, Tenant, landed

NUL = "a\x00b"
STREAMS = ("events", "identities", "sessions", "session_aggregates")


def stored(api: Api, tenant: Tenant) -> int:
    return sum(len(landed(api.layout, stream, tenant.org_id)) for stream in STREAMS)


def sentry_envelope(**update: object) -> bytes:
    payload = orjson.dumps(
        {"sid": "s-1", "started": "2026-01-18T12:00:00Z", "attrs": {"release": "shop@1"}} | update
    )
    header = orjson.dumps({"type": "session", "length": len(payload)})
    return b"\n".join([b"{}", header, payload]) + b"\n"


# (path, JSON body, the field the 400 names)
REFUSED = [
    ("/api/analytics/capture", {**EVENT, "distinct_id": NUL}, "distinct_id"),
    ("/api/analytics/capture", {**EVENT, "anonymous_id": "a\x1fb"}, "anonymous_id"),
    ("/api/analytics/capture", {**EVENT, "device_id": "a\x7fb"}, "device_id"),
    ("/api/analytics/capture", {**EVENT, "session_id": "a\x85b"}, "session_id"),  # C1
    ("/api/analytics/capture", {**EVENT, "environment": "prod\n"}, "environment"),
    ("/api/analytics/batch", {"batch": [EVENT, {**EVENT, "distinct_id": NUL}]}, "distinct_id"),
    ("/api/analytics/identify", {"distinct_id": "u", "anonymous_id": NUL}, "anonymous_id"),
    ("/api/analytics/alias", {"distinct_id": "u", "alias": NUL}, "alias"),
    ("/api/analytics/set", {"distinct_id": "u", "properties": {NUL: 1}}, "properties"),
    (
        "/api/analytics/set",
        {"distinct_id": "u", "properties": {}, "set_once": {NUL: 1}},
        "set_once",
    ),
    (
        "/api/analytics/capture",
        {**EVENT, "properties": {"$set": {"plan\x00": "pro"}}},
        "properties",
    ),
    (
        "/api/analytics/capture",
        {**EVENT, "event": "$identify", "properties": {"$anon_distinct_id": NUL}},
        "properties",
    ),
    (
        "/api/analytics/capture",
        {
            **EVENT,
            "event": "$feature_flag_called",
            "properties": {"$feature_flag": "new\x00checkout", "$feature_flag_response": True},
        },
        "properties",
    ),
    ("/track", {"environment": "production", "event": "Sign\x00Up", "properties": {}}, "event"),
    ("/track", {"environment": "prod\x00", "event": "Signed Up", "properties": {}}, "environment"),
    ("/batch/", {"batch": [{"event": "e", "distinct_id": NUL}]}, "distinct_id"),
    ("/e/", [{"event": "e", "properties": {"distinct_id": NUL}}], "distinct_id"),
    ("/batch/", {"batch": [{"event": "e", "distinct_id": "u", "$set": {NUL: 1}}]}, "$set"),
    (
        "/batch/",
        {"batch": [{"event": "e", "distinct_id": "u", "properties": {"$session_id": NUL}}]},
        "properties",
    ),
    (
        "/batch/",
        {"batch": [{"event": "$create_alias", "distinct_id": "u", "properties": {"alias": NUL}}]},
        "properties",
    ),
    ("/api/sessions/start", {**SESSION_START, "session_id": NUL}, "session_id"),
    ("/api/sessions/start", {**SESSION_START, "distinct_id": NUL}, "distinct_id"),
    ("/api/sessions/start", {**SESSION_START, "release": "1.0\x00"}, "release"),
    ("/api/sessions/start", {**SESSION_START, "environment": "\x00"}, "environment"),
    ("/api/sessions/end", {**SESSION_END, "session_id": NUL}, "session_id"),
]


@pytest.mark.parametrize(("path", "body", "field"), REFUSED)
def test_control_characters_in_stored_text_are_400_naming_the_field(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, body: object, field: str
) -> None:
    response = client.post(f"{path}?sync=true", json=body, headers=tenant.headers)

    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert "control character" in response.json()["errors"][0]["reason"]
    assert stored(api, tenant) == 0


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"sid": NUL}, "sid"),
        ({"did": NUL}, "did"),
        ({"attrs": {"release": NUL}}, "attrs.release"),
        ({"attrs": {"release": "shop@1", "environment": NUL}}, "attrs.environment"),
    ],
)
def test_control_characters_in_sentry_sessions_are_400_naming_the_field(
    client: httpx.Client, api: Api, tenant: Tenant, update: dict, field: str
) -> None:
    response = client.post(
        f"/api/{tenant.record.project_id}/envelope/",
        content=sentry_envelope(**update),
        headers=tenant.headers,
    )

    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert stored(api, tenant) == 0


def test_free_text_properties_keep_their_control_characters(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    properties = {"note": "line one\nline two\x00", "te\x00xt": "\x85", "$feature_flag": NUL}
    response = client.post(
        "/api/analytics/capture", json={**EVENT, "properties": properties}, headers=tenant.headers
    )

    assert response.status_code == 200, response.text
    [record] = landed(api.layout, "events", tenant.org_id)
    assert record["properties"] == properties
    # On disk they are JSON escapes: the file holds no raw NUL.
    [path] = api.layout.stream_dir("events").glob(f"org_id={tenant.org_id}/*/*/part-*")
    assert b"\x00" not in path.read_bytes()
