"""Session start and end: fields, and idempotency on session_id."""

from __future__ import annotations

import httpx
import pytest

from tests.ingest_api.ingest.utils.bodies import SESSION_END, SESSION_START
from tests.ingest_api.ingest.utils.server import Api, Tenant, landed
from warehouse.streams import STREAM_COLUMNS


def test_start_and_end_land_the_seed_fields(client: httpx.Client, api: Api, tenant: Tenant) -> None:
    start = client.post("/api/sessions/start", json=SESSION_START, headers=tenant.headers)
    end = client.post("/api/sessions/end", json=SESSION_END, headers=tenant.headers)

    assert (start.status_code, end.status_code) == (200, 200)
    records = landed(api.layout, "sessions", tenant.org_id)
    assert all(list(r) == list(STREAM_COLUMNS["sessions"]) for r in records)
    fields = [
        {k: v for k, v in r.items() if k not in ("uuid", "received_at", "ip")} for r in records
    ]
    common = {
        "org_id": tenant.org_id,
        "project_id": tenant.record.project_id,
        "source": "sessions",
        "session_id": "ses_1",
    }
    assert fields == [
        {
            **common,
            "kind": "start",
            "distinct_id": "user_123",
            "release": "1.2.3",
            "environment": "production",
            "platform": "javascript",
            "started_at": "2026-01-18T12:00:00Z",
            "sample_rate": 1.0,
            "status": None,
            "error_count": None,
            "crash_count": None,
            "ended_at": None,
            "duration_ms": None,
            "client_time": None,
        },
        {
            **common,
            "kind": "end",
            "distinct_id": None,
            "release": None,
            "environment": None,
            "platform": None,
            "started_at": None,
            "sample_rate": None,
            "status": "exited",
            "error_count": 0,
            "crash_count": 0,
            "ended_at": "2026-01-18T12:30:00Z",
            "duration_ms": 1800000,
            "client_time": None,
        },
    ]
    assert start.json()["uuid"] == records[0]["uuid"] and end.json()["uuid"] == records[1]["uuid"]


def test_retries_land_with_the_same_uuid_per_org_session_and_kind(
    client: httpx.Client, api: Api, new_tenant
) -> None:
    ours, other_org = new_tenant(), new_tenant()
    for _ in range(2):
        client.post("/api/sessions/start", json=SESSION_START, headers=ours.headers)
        client.post(
            "/api/sessions/end",
            json={**SESSION_END, "status": "crashed", "crash_count": 1},
            headers=ours.headers,
        )
    client.post("/api/sessions/start", json=SESSION_START, headers=other_org.headers)
    client.post(
        "/api/sessions/start", json={**SESSION_START, "session_id": "ses_2"}, headers=ours.headers
    )

    ours_records = landed(api.layout, "sessions", ours.org_id)
    by_kind: dict[tuple[str, str], set[str]] = {}
    for record in ours_records:
        by_kind.setdefault((record["session_id"], record["kind"]), set()).add(record["uuid"])
    assert len(ours_records) == 5
    assert all(len(uuids) == 1 for uuids in by_kind.values())  # a retry keeps its uuid
    assert len(set().union(*by_kind.values())) == 3  # start, end and another session differ
    [theirs] = landed(api.layout, "sessions", other_org.org_id)
    assert theirs["uuid"] not in set().union(*by_kind.values())


@pytest.mark.parametrize(
    ("platform", "status"),
    list(
        zip(
            ["javascript", "node", "rust", "python"],
            ["exited", "crashed", "abnormal", "errored"],
            strict=True,
        )
    ),
)
def test_every_platform_and_status_is_accepted(
    client: httpx.Client, tenant: Tenant, platform: str, status: str
) -> None:
    assert (
        client.post(
            "/api/sessions/start",
            json={**SESSION_START, "platform": platform},
            headers=tenant.headers,
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/sessions/end", json={**SESSION_END, "status": status}, headers=tenant.headers
        ).status_code
        == 200
    )


def test_end_without_ended_at_gets_the_server_time(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    body = {k: v for k, v in SESSION_END.items() if k != "ended_at"}
    assert client.post("/api/sessions/end", json=body, headers=tenant.headers).status_code == 200
    [record] = landed(api.layout, "sessions", tenant.org_id)
    assert record["ended_at"] == record["received_at"]
