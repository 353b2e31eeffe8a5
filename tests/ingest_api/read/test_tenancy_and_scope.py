"""One org's key never reads another org's data; a write key never reads; no key, no answer."""

from __future__ import annotations

import httpx
import pytest

from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.dbt import person_uuid
from warehouse.registry import Registry

pytestmark = pytest.mark.slow

PROJECT_ROUTES = [
    "/api/projects/{p}/releases",
    "/api/projects/{p}/releases/1.2.3",
    "/api/projects/{p}/health/trend",
    "/api/projects/{p}/sessions",
    "/api/projects/{p}/sessions/b-0",
    "/api/projects/{p}/sessions/stream",
]
ANALYTICS_ROUTES = [
    "/api/analytics/persons",
    "/api/analytics/persons/alice",
    "/api/analytics/events",
    "/api/analytics/export?start_date=2026-11-20&end_date=2026-11-21",
]


@pytest.mark.parametrize("route", PROJECT_ROUTES)
def test_another_orgs_project_is_404_like_a_missing_one(
    client_a: httpx.Client, built: Built, route: str
) -> None:
    other = client_a.get(route.format(p=built.tenants.project_b))
    missing = client_a.get(route.format(p=987654))

    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == f"project {built.tenants.project_b} not found"
    assert missing.json()["detail"] == "project 987654 not found"


def test_other_orgs_persons_and_events_are_invisible(
    client_a: httpx.Client, client_b: httpx.Client, built: Built, published: dict
) -> None:
    org_a, org_b = built.tenants.org_a, built.tenants.org_b
    # Both orgs have an "alice"; each key sees only its own.
    alice_a = client_a.get("/api/analytics/persons/alice").json()
    alice_b = client_b.get("/api/analytics/persons/alice").json()
    assert alice_a["person_id"] == person_uuid(org_a, "anon-1")
    assert alice_b == {
        "person_id": person_uuid(org_b, "alice"),
        "distinct_ids": ["alice"],
        "properties": {},
        "is_identified": False,
        "created_at": "2026-11-20T09:05:00Z",
        "last_seen_at": "2026-11-20T10:04:00Z",
        "snapshot": published,
    }
    assert client_b.get("/api/analytics/persons/anon-1").status_code == 404
    assert [p["person_id"] for p in client_b.get("/api/analytics/persons").json()["persons"]] == [
        person_uuid(org_b, "alice")
    ]
    b_events = client_b.get("/api/analytics/events").json()["events"]
    assert [e["uuid"] for e in b_events] == [f"{org_b}-b1"]
    a_events = client_a.get("/api/analytics/events", params={"distinct_id": "alice"}).json()
    assert {e["uuid"].split("-")[0] for e in a_events["events"]} == {org_a}
    export = client_b.get(
        "/api/analytics/export", params={"start_date": "2026-11-01", "end_date": "2026-12-01"}
    )
    assert export.text.count("\n") == 1 and org_a not in export.text


def test_a_project_sees_only_its_own_sessions_and_releases(
    client_a: httpx.Client, client_b: httpx.Client, built: Built
) -> None:
    # Org B's session ids are not found through org A's project, and vice versa.
    assert client_a.get(f"/api/projects/{built.tenants.project_a}/sessions/b-0").status_code == 404
    b_sessions = client_b.get(f"/api/projects/{built.tenants.project_b}/sessions").json()
    assert [s["id"] for s in b_sessions["sessions"]] == ["b-4", "b-3", "b-2", "b-1", "b-0"]
    # Org A's 1.2.3 sessions on the same day count for neither org's other project, over the
    # whole history or a window (the windowed macro filters by tenant inside).
    for window in ({}, {"start_date": "2026-11-20", "end_date": "2026-11-21"}):
        b_releases = client_b.get(
            f"/api/projects/{built.tenants.project_b}/releases", params=window
        ).json()
        assert [
            (r["release"], r["total_sessions"], r["crashed_sessions"], r["adoption_rate"])
            for r in b_releases["releases"]
        ] == [("1.2.3", 5, 1, 100.0)]


@pytest.mark.parametrize("route", PROJECT_ROUTES + ANALYTICS_ROUTES)
def test_a_write_key_never_reads(api: RunningApi, built: Built, route: str) -> None:
    headers = Tenants.headers(built.tenants.write_key_a)
    response = httpx.get(api.base_url + route.format(p=built.tenants.project_a), headers=headers)
    assert response.status_code == 403
    assert "write key" in response.json()["detail"]


@pytest.mark.parametrize("route", PROJECT_ROUTES + ANALYTICS_ROUTES)
def test_no_key_or_an_unknown_key_is_401(api: RunningApi, built: Built, route: str) -> None:
    url = api.base_url + route.format(p=built.tenants.project_a)
    unknown = {"Authorization": "Bearer loom_analytics_rw_0000"}
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=unknown).status_code == 401


def test_a_revoked_key_stops_reading(api: RunningApi, built: Built) -> None:
    with Registry.open(built.layout) as registry:
        extra = registry.create_key("acme", "web", "rw")
        url = f"{api.base_url}/api/analytics/persons/alice"
        assert httpx.get(url, headers=Tenants.headers(extra.key)).status_code == 200
        registry.revoke(extra.record.key_id)
    assert httpx.get(url, headers=Tenants.headers(extra.key)).status_code == 401
