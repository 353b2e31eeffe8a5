"""API keys: where they are read from, 401/403, and tenancy taken from the key only."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed
from warehouse.registry import Registry

EVENT = {"event": "signed_up", "distinct_id": "user_1", "properties": {}}


@pytest.mark.parametrize("where", ["bearer", "x-api-key", "api_key", "token"])
def test_key_is_read_from_either_header_or_the_body(
    client: httpx.Client, api: Api, tenant: Tenant, where: str
) -> None:
    headers, body = {}, dict(EVENT)
    if where == "bearer":
        headers = {"Authorization": f"Bearer {tenant.key}"}
    elif where == "x-api-key":
        headers = {"X-API-Key": tenant.key}
    else:
        body[where] = tenant.key

    response = client.post("/api/analytics/capture", json=body, headers=headers)

    assert response.status_code == 200, response.text
    [record] = landed(api.layout, "events", tenant.org_id)
    assert "api_key" not in record and "token" not in record and tenant.key not in str(record)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"X-API-Key": ""}],
)
def test_missing_key_is_401(client: httpx.Client, headers: dict) -> None:
    response = client.post("/api/analytics/capture", json=EVENT, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("missing API key")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_key_is_401(client: httpx.Client) -> None:
    response = client.post(
        "/api/analytics/capture", json=EVENT, headers={"X-API-Key": "loom_analytics_write_forged"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown API key"


def test_revoked_key_is_401_at_once(
    client: httpx.Client, registry: Registry, tenant: Tenant
) -> None:
    assert (
        client.post("/api/analytics/capture", json=EVENT, headers=tenant.headers).status_code == 200
    )

    registry.revoke(tenant.record.key_id)
    response = client.post("/api/analytics/capture", json=EVENT, headers=tenant.headers)

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_auth_is_checked_before_the_body_is_validated(client: httpx.Client) -> None:
    response = client.post("/api/analytics/batch", json={"batch": [{"event": "Bad"}]})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path", ["/track", "/batch/", "/api/sessions/start", "/api/analytics/identify"]
)
def test_every_ingest_route_needs_a_key(client: httpx.Client, path: str) -> None:
    assert client.post(path, json={}).status_code == 401


def test_read_route_answers_an_rw_key_and_forbids_a_write_key(
    client: httpx.Client, new_tenant: Callable[..., Tenant]
) -> None:
    writer = new_tenant("write")
    reader = new_tenant("rw", org=writer.record.org_name)

    forbidden = client.get("/api/keys/me", headers=writer.headers)
    allowed = client.get("/api/keys/me", headers={"X-API-Key": reader.key})

    assert forbidden.status_code == 403
    assert "write key" in forbidden.json()["detail"]
    assert allowed.status_code == 200
    assert allowed.json() == {
        "key_id": reader.record.key_id,
        "kind": "rw",
        "org_id": writer.org_id,
        "project_id": writer.record.project_id,
        "project_name": "web",
    }
    assert client.get("/api/keys/me").status_code == 401


def test_an_rw_key_can_write(client: httpx.Client, new_tenant: Callable[..., Tenant]) -> None:
    reader = new_tenant("rw")
    assert (
        client.post("/api/analytics/capture", json=EVENT, headers=reader.headers).status_code == 200
    )


def test_org_and_project_come_from_the_key_never_from_the_body(
    client: httpx.Client, api: Api, new_tenant: Callable[..., Tenant]
) -> None:
    ours, theirs = new_tenant(), new_tenant()
    spoof = {"org_id": theirs.org_id, "project_id": theirs.record.project_id}

    native = client.post("/api/analytics/capture", json={**EVENT, **spoof}, headers=ours.headers)
    track = client.post(
        "/track?sync=true",
        json={"environment": "production", "event": "signed_up", "properties": spoof, **spoof},
        headers=ours.headers,
    )
    posthog = client.post(
        "/capture/", json={"api_key": ours.key, "event": "signed_up", "distinct_id": "u", **spoof}
    )

    assert native.status_code == 400  # native bodies have no such fields
    assert (track.status_code, posthog.status_code) == (200, 200)
    records = landed(api.layout, "events", ours.org_id)
    assert len(records) == 2
    assert {(r["org_id"], r["project_id"]) for r in records} == {
        (ours.org_id, ours.record.project_id)
    }
    assert landed(api.layout, "events", theirs.org_id) == []
